"""Guidance against closed forms: CFG and CFG++ limits, concentration at large w, exact
classifier guidance, Adaptive Guidance's savings, SVDD's tilted Gaussian, DPS on a
linear-Gaussian inverse problem, TSDiff's energies, EluCD's calibration; bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.conditioning import class_condition
from diffjax.core import Fields
from diffjax.data import GaussianMixture, mixture_oracle, two_class_mixture
from diffjax.errors import ConfigError
from diffjax.guidance import (ConditionalModel, Guidance, adaptive_guidance,
                              calibrated_log_prob, cfgpp, cfgpp_fields, check_interval,
                              classifier_free, classifier_guidance, dps,
                              inpainting, observation_energy, off_the_shelf_guidance,
                              posterior_mean_value, reconstruction_guidance,
                              saved_fraction, self_guidance, softplus_relu, svdd)
from diffjax.guidance.build import GuidanceContext, build_guidance
from diffjax.paths import build_path
from diffjax.fields import complete
from diffjax.solvers import SAMPLERS, sample

VP = build_path("vp")
TASK = two_class_mixture(separation=1.0, std=0.7)
N = 512
STEPS = 12
X0 = VP.source_sample(jax.random.PRNGKey(0), (N, 2))
# The sampler runs below are compiled once each and shared by the tests (the parameters
# w, lambda and the threshold are traced), so the file compiles 4 samplers, not 9.


def _model(path, labels, num_classes=2):
  cond, null = class_condition(labels, num_classes)
  return ConditionalModel(TASK.fields_of(path), cond, null)


def _x0(path, n=N, dim=2, seed=0):
  return path.source_sample(jax.random.PRNGKey(seed), (n, dim))


@jax.jit
def _cfg(labels, w):
  return sample("ddim", classifier_free(_model(VP, labels), w), VP, X0, num_steps=STEPS).x


@jax.jit
def _plain(labels):
  """DDIM on the exact fields of labels (2: the unconditional model)."""
  return sample("ddim", TASK.fields(VP, labels), VP, X0, num_steps=STEPS).x


@jax.jit
def _cfgpp(labels, lam):
  model = _model(VP, labels)
  return sample("ddim", None, VP, X0, num_steps=STEPS, guidance=Guidance(
      cfgpp_fields(model, VP, lam), lambda s, n: cfgpp(s, VP, n))).x


@jax.jit
def _adaptive(labels, threshold):
  model = _model(VP, labels)
  g = Guidance(model.conditional(),
               lambda s, n: adaptive_guidance(s, model, 2.0, threshold, n, "data"))
  result = sample("ddim", None, VP, X0, num_steps=STEPS, guidance=g)
  return result.x, result.nfe


LABELS = jnp.arange(N) % 2
NULL = jnp.full((N,), 2)


def test_cfg_w1_is_the_conditional_sampler_and_w0_the_unconditional():
  """To float32 rounding (u + 1 (c - u) vs c; one batched call vs separate calls)."""
  np.testing.assert_allclose(_cfg(LABELS, 1.0), _plain(LABELS), atol=2e-5)
  np.testing.assert_allclose(_cfg(LABELS, 0.0), _plain(NULL), atol=2e-5)


def test_cfgpp_lambda0_is_unconditional_ddim_and_differs_from_cfg_otherwise():
  np.testing.assert_allclose(_cfgpp(LABELS, 0.0), _plain(NULL), atol=2e-5)
  assert float(jnp.max(jnp.abs(_cfgpp(LABELS, 0.5) - _cfg(LABELS, 0.5)))) > 1e-2


def test_guidance_takes_the_grid_of_sample_with_an_adaptive_sampler():
  """Guided like unguided: dopri5 without num_steps makes one adaptive solve over [0, 1]
  (the same steps and result as unguided sampling of the same fields), and with a
  trajectory of num_steps = 3 records 4 states."""
  model = _model(VP, LABELS[:64])
  cfg = classifier_free(model, 2.0)
  x0 = X0[:64]
  guided, plain, recorded = jax.jit(lambda x: (
      sample("dopri5", None, VP, x, guidance=Guidance(cfg), rtol=1e-3, atol=1e-3),
      sample("dopri5", cfg, VP, x, rtol=1e-3, atol=1e-3),
      sample("dopri5", None, VP, x, num_steps=3, return_trajectory=True,
             guidance=Guidance(cfg), rtol=1e-3, atol=1e-3)))(x0)
  assert int(guided.nfe) == int(plain.nfe)
  np.testing.assert_array_equal(guided.x, plain.x)
  assert recorded.trajectory.shape == (4, 64, 2)


def test_large_w_concentrates_on_the_class():
  """The fraction of class-1 samples on the class's side (x > 0) and their mean along the
  class axis grow with w: w = 0 is the unconditional mixture (mean 0, half on each side),
  w = 1 the exact conditional (mean +1, P(x > 0) = 0.923 for a N(1, 0.7^2) first
  coordinate), and large w pushes mass away from the other class ("What does guidance
  do?", Chidambaram et al. 2024). Monte-Carlo tolerance for 512 samples: 4 standard
  errors, plus 0.02 for 12 DDIM steps' discretisation (their bias, measured against the
  exact class draws below, is < 0.01)."""
  labels = jnp.ones(N, jnp.int32)
  stats = {}
  for w in (0.0, 1.0, 4.0):
    x = np.asarray(_cfg(labels, w))
    stats[w] = (np.mean(x[:, 0] > 0), np.mean(x[:, 0]))
  se = 0.85 / np.sqrt(N)
  assert abs(stats[0.0][1]) < 4 * se + 0.02 and abs(stats[0.0][0] - 0.5) < 0.09
  assert abs(stats[1.0][1] - 1.0) < 4 * 0.7 / np.sqrt(N) + 0.02
  assert abs(stats[1.0][0] - 0.923) < 0.05
  assert stats[4.0][0] > 0.99 and stats[4.0][1] > stats[1.0][1] + 0.3, stats


def test_exact_noise_aware_classifier_guidance_is_the_conditional_model():
  """The exact classifier log p_t(y | x) of the mixture (Bayes' rule on the time-t
  marginals) with scale 1 turns the unconditional fields into those of class y = 1, to
  float32 rounding of the gradient (1e-3)."""
  labels = jnp.ones(64, jnp.int32)
  unconditional = mixture_oracle(VP, TASK.unconditional()).fields()
  conditional = mixture_oracle(VP, TASK.classes[1]).fields()
  log_prob = lambda x, t: TASK.log_prob_class(VP, t, x, labels)
  guided = classifier_guidance(unconditional, VP, log_prob, 1.0)
  x = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
  both = jax.jit(lambda x, t: (guided.evaluate(x, t), conditional.evaluate(x, t)))
  for t in (0.3, 0.7, 0.95):
    got, want = both(x, t)
    for name in ("score", "noise", "data", "velocity"):
      np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-3,
                                 atol=1e-3)


def test_guidance_interval_runs_the_conditional_model_outside():
  """A linear stand-in model (data prediction (1 + c) x, c = 1 conditional, 0 null):
  inside [0.4, 0.8] the prediction is u + 3 (c - u) = 4 x, outside the conditional 2 x;
  with a per-example t the same, row by row."""
  model = ConditionalModel(
      lambda c: Fields.of(data=lambda x, t: x * (1.0 + c[:, None])),
      jnp.ones(8), jnp.zeros(8))
  fields = classifier_free(model, 3.0, (0.4, 0.8))
  x = jax.random.normal(jax.random.PRNGKey(4), (8, 2))
  data = jax.jit(lambda t: fields.evaluate(x, t).data)
  np.testing.assert_allclose(data(0.2), 2 * x, rtol=1e-6)
  np.testing.assert_allclose(data(0.6), 4 * x, rtol=1e-6)
  rows = jnp.where(jnp.arange(8) % 2 == 0, 0.6, 0.9)
  factor = jnp.where(jnp.arange(8) % 2 == 0, 4.0, 2.0)[:, None]
  np.testing.assert_allclose(data(rows), factor * x, rtol=1e-6)


def test_adaptive_guidance_saves_calls_at_a_small_change():
  """threshold 1 never switches (CFG exactly, 2 evaluations per step); at 0.95 (mean
  cosine of the denoised estimates) it saves 1 or 2 of the 12 steps' unconditional calls
  (measured 1: 4%; tolerance 2-20%) at an RMS change from CFG's samples below 0.08."""
  cfg = _cfg(LABELS, 2.0)
  never, nfe = _adaptive(LABELS, 1.0)
  np.testing.assert_allclose(never, cfg, atol=1e-5)
  assert int(nfe) == 2 * STEPS
  some, nfe = _adaptive(LABELS, 0.95)
  assert 0.02 <= saved_fraction(nfe, STEPS) <= 0.2, int(nfe)
  assert float(jnp.sqrt(jnp.mean((some - cfg) ** 2))) < 0.08


def test_svdd_approaches_the_tilted_gaussian_as_m_grows():
  """Prior N(0.5, 1), reward r = x, alpha = 1: target N(1.5, 1). With exact fields, 100
  ancestral steps and 1,000 samples the mean is within 0.3 of 1.5 at M = 8 (measured
  1.31; 1.39 at M = 32, see `python -m benchmarks.guidance`); with alpha = 1e9 the weights
  are uniform and SVDD picks a candidate at random, the pretrained sampler (mean 0.5;
  tolerance 0.15 = 4.7 standard errors)."""
  prior = GaussianMixture(jnp.ones(1), jnp.array([[0.5]]), jnp.ones((1, 1, 1)))
  fields = mixture_oracle(VP, prior).fields()
  x0 = _x0(VP, 1000, 1)

  @jax.jit
  def run(alpha):
    g = Guidance(wrap=lambda s, n: svdd(
        s, posterior_mean_value(lambda x1: x1[:, 0]), 8, alpha, shared_evaluation=True))
    result = sample("ancestral", fields, VP, x0, jax.random.PRNGKey(1), num_steps=100,
                    guidance=g)
    return jnp.mean(result.x), result.nfe

  tilted, nfe = run(1.0)
  assert int(nfe) == 100 * (1 + 8)
  assert abs(float(tilted) - 1.5) < 0.3
  assert abs(float(run(1e9)[0]) - 0.5) < 0.15


def test_svdd_keeps_each_examples_condition_on_its_candidates():
  """SVDD through the registry on a class-conditional model: each example's M candidates
  are evaluated under its own label (the condition repeated, not tiled). With a constant
  reward the choice is uniform, so the samples of each label keep that class's mean on the
  first axis, -1 and +1 (tolerance 0.2 = 4 standard errors of 256 samples); candidates
  under other examples' labels would pull both towards 0."""
  labels = jnp.repeat(jnp.arange(2), 256)
  context = GuidanceContext(_model(VP, labels), VP, "ancestral")._replace(
      reward=lambda x: jnp.zeros(x.shape[0]))
  guidance = build_guidance(_Section(dict(method="svdd", num_candidates=4, alpha=1.0)),
                            context)
  x = sample("ancestral", None, VP, _x0(VP, 512), jax.random.PRNGKey(3), num_steps=30,
             guidance=guidance).x
  means = [float(jnp.mean(x[labels == c, 0])) for c in (0, 1)]
  np.testing.assert_allclose(means, [-1.0, 1.0], atol=0.2)


def _linear_gaussian():
  cov = jnp.array([[1.0, 0.6], [0.6, 1.0]])
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), cov[None])
  a, noise_std, y = jnp.array([[1.0, 0.0]]), 0.3, jnp.array([1.5])
  gain = cov @ a.T / (a @ cov @ a.T + noise_std ** 2)
  return prior, a, noise_std, y, gain @ y, cov - gain @ a @ cov


def test_dps_approaches_the_exact_posterior_of_a_linear_gaussian_problem():
  """Prior N(0, [[1, .6], [.6, 1]]), y = x_1 + N(0, 0.3^2) = 1.5: posterior mean (1.376,
  0.826), covariance [[0.083, 0.050], [0.050, 0.670]]. DPS (100 ancestral steps, zeta =
  0.05) measured mean (1.447, 0.803), covariance [[0.044, 0.050], [0.050, 0.669]] on 2,000
  samples: tolerance 0.12 on the mean and 0.07 on the covariance (1,000 samples: the
  covariance's standard error is ~0.03); zeta = 0 is the prior (mean 0 within 0.12). The
  dependence on zeta is in `python -m benchmarks.guidance`."""
  prior, a, _, y, mean, cov = _linear_gaussian()
  fields = mixture_oracle(VP, prior).fields()
  x0 = _x0(VP, 1000)
  ys = jnp.broadcast_to(y, (1000, 1))
  op = lambda x: x @ a.T
  run = jax.jit(lambda zeta: sample(
      "ancestral", fields, VP, x0, jax.random.PRNGKey(1), num_steps=100,
      guidance=Guidance(wrap=lambda s, n: dps(s, op, ys, zeta, n))).x)
  x = np.asarray(run(0.05))
  np.testing.assert_allclose(x.mean(0), mean, atol=0.12)
  np.testing.assert_allclose(np.cov(x.T), cov, atol=0.07)
  assert np.all(np.abs(np.asarray(run(0.0)).mean(0)) < 0.12)


def test_dps_on_the_data_prediction_takes_the_normalised_step_then_renoises():
  """on="data", zeta = 1/2: the normalised step zeta grad |r|^2 / |r| has length 2 zeta = 1
  along A^T r / |r|: with A = [1, 0] it moves x1_hat's first entry by sign(y - x1_hat_1)
  and leaves the second; then DDIM renoises from the corrected estimate x1~: x_next =
  alpha' x1~ + sigma' (x - alpha x1~) / sigma (float32 rounding)."""
  prior, a, _, y, _, _ = _linear_gaussian()
  fields = complete(mixture_oracle(VP, prior).fields(), VP)
  x = jax.random.normal(jax.random.PRNGKey(7), (8, 2))
  stepper = dps(SAMPLERS.get("ddim").build(VP), lambda z: z @ a.T,
                jnp.broadcast_to(y, (8, 1)), 0.5, "ddim", on="data", path=VP)
  t, t_next = 0.4, 0.6
  got, x1_hat = jax.jit(lambda x: (stepper.step(fields, x, stepper.init(x, None), t, t_next,
                                                None)[0], fields.evaluate(x, t).data))(x)
  corrected = np.asarray(x1_hat).copy()
  corrected[:, 0] += np.sign(float(y[0]) - corrected[:, 0])
  view = VP.gaussian
  al, sg, al_n, sg_n = (float(f(s)) for f, s in ((view.alpha, t), (view.sigma, t),
                                                 (view.alpha, t_next), (view.sigma, t_next)))
  want = al_n * corrected + sg_n * (np.asarray(x) - al * corrected) / sg
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_tsdiff_squared_energy_is_gaussian_reconstruction_guidance():
  """exp(-s |m (x1 - y)|^2) is N(y; m x1, 1 / (2 s)) on the observed entries; the pinball
  energy of quantile 0.9 weighs under-prediction by 0.9 and over-prediction by 0.1."""
  prior, *_ = _linear_gaussian()
  fields = mixture_oracle(VP, prior).fields()
  mask, y = jnp.array([[1.0, 0.0]]), jnp.tile(jnp.array([[1.2, 0.0]]), (8, 1))
  scale = 2.0
  ts = self_guidance(fields, VP, y, mask, scale)
  rg = reconstruction_guidance(fields, VP, inpainting(mask), y * mask, (2 * scale) ** -0.5)
  pin = observation_energy(y, mask, "quantile", 0.9)
  x = jax.random.normal(jax.random.PRNGKey(5), (8, 2))
  got, want, under, over = jax.jit(lambda x: (
      ts.evaluate(x, 0.6).score, rg.evaluate(x, 0.6).score, pin(0 * x), pin(0 * x + 2)))(x)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(under, 0.9 * 1.2, rtol=1e-6)
  np.testing.assert_allclose(over, 0.1 * 0.8, rtol=1e-5)


def test_elucd_calibration_schedule_and_gradient_at_the_denoised_estimate():
  """Calibration against NumPy; a linear classifier f = W x1 has the closed-form
  gradient g = grad_x1 log p~ = W_y - ratio tau1 softmax(tau2 f) W, added to the score
  with the sine schedule's strength scale (1 + 0.3 sin(pi t)) = 1.5 * 1.3 at t = 1/2: g
  itself at the estimate, J^T g through the denoiser, where for the Gaussian prior
  N(0, C) the denoiser x1_hat = J x has J = alpha C (alpha^2 C + sigma^2 I)^-1."""
  logits, one = np.array([[1.0, 2.0, -1.0]]), jnp.array([1])
  lse = np.log(np.sum(np.exp(logits)))
  prior, *_ = _linear_gaussian()
  fields = mixture_oracle(VP, prior).fields()
  w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], np.float32)
  guide = lambda through: off_the_shelf_guidance(
      fields, VP, lambda x1: x1 @ w.T, jnp.zeros(4, jnp.int32), 1.5, 1.0, 0.5, 0.3, through)
  x, t = jax.random.normal(jax.random.PRNGKey(6), (4, 2)), 0.5
  plain, got, chained, temperature1, calibrated, smooth = jax.jit(lambda x: (
      fields.evaluate(x, t), guide("estimate").evaluate(x, t).score,
      guide("denoiser").evaluate(x, t).score,
      calibrated_log_prob(jnp.asarray(logits), one, 1.0, 1.0),
      calibrated_log_prob(jnp.asarray(logits), one, 2.0, 0.5),
      softplus_relu(1e4)(jnp.array([-1.0, 2.0]))))(x)
  np.testing.assert_allclose(temperature1, 2.0 - lse, rtol=1e-6)
  np.testing.assert_allclose(calibrated, 4.0 - lse, rtol=1e-6)
  np.testing.assert_allclose(smooth, [0.0, 2.0], atol=1e-4)
  f = np.asarray(plain.data) @ w.T * 0.5
  soft = np.exp(f - f.max(1, keepdims=True))
  soft /= soft.sum(1, keepdims=True)
  gradient = w[0][None] - 0.5 * soft @ w
  np.testing.assert_allclose(got, np.asarray(plain.score) + 1.5 * 1.3 * gradient,
                             rtol=1e-4, atol=1e-5)
  alpha, sigma = float(VP.gaussian.alpha(t)), float(VP.gaussian.sigma(t))
  c = np.asarray(prior.covariances[0])
  jacobian = alpha * c @ np.linalg.inv(alpha ** 2 * c + sigma ** 2 * np.eye(2))
  np.testing.assert_allclose(chained, np.asarray(plain.score) + 1.5 * 1.3 * gradient @
                             jacobian, rtol=1e-4, atol=1e-4)


def test_bad_input_is_refused_with_one_clear_line():
  labels = jnp.arange(4) % 2
  unconditional = ConditionalModel(TASK.fields_of(VP), labels, None)
  with pytest.raises(ConfigError, match="unconditional model"):
    classifier_free(unconditional, 2.0)
  with pytest.raises(ConfigError, match="Class id 2 is out of range"):
    class_condition(jnp.array([0, 2]), 2)
  with pytest.raises(ConfigError, match="unconditional"):
    class_condition(labels, 0)
  with pytest.raises(ConfigError, match="interval"):
    check_interval((0.5, 1.2))
  model = _model(VP, labels)
  x0 = _x0(VP, 4)
  context = GuidanceContext(model, VP, "heun")
  section = lambda **kw: dict(dict(method="cfgpp", scale=0.5), **kw)
  with pytest.raises(ConfigError, match="heun"):
    sample("heun", None, VP, x0, num_steps=2,
           guidance=build_guidance(_Section(section()), context))
  with pytest.raises(ConfigError, match=r"lambda .* must be in \[0, 1\]"):
    build_guidance(_Section(section(scale=3.0)), context)
  with pytest.raises(ConfigError, match="M >= 1"):
    build_guidance(_Section(dict(method="svdd", num_candidates=0)),
                   context._replace(reward=lambda x: x[:, 0], sampler="ancestral"))
  with pytest.raises(ConfigError, match=r"maps states \(4, 2\) to \(4, 1\)"):
    build_guidance(_Section(dict(method="dps", step_size=0.1)), context._replace(
        sampler="ddim", measurements=jnp.zeros((4, 2)), operator=lambda x: x[:, :1],
        state_shape=(4, 2)))
  with pytest.raises(ConfigError, match="needs measurements, operator"):
    build_guidance(_Section(dict(method="dps")), context._replace(sampler="ddim"))
  with pytest.raises(ConfigError, match="DPS needs a sampler that evaluates .* once"):
    build_guidance(_Section(dict(method="dps")), context)


class _Section(dict):
  """A config section stand-in: attribute and .get access."""
  __getattr__ = dict.__getitem__
