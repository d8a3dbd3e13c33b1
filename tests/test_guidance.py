"""Guidance against closed forms: CFG and CFG++ limits, concentration at large w, exact
classifier guidance, Adaptive Guidance's savings, SVDD's tilted Gaussian, DPS on a
linear-Gaussian inverse problem, TSDiff's energies, EluCD's calibration; bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.conditioning import class_condition
from diffjax.data import GaussianMixture, mixture_oracle, two_class_mixture
from diffjax.errors import ConfigError
from diffjax.guidance import (ConditionalModel, Guidance, adaptive_guidance,
                              calibrated_log_prob, cfgpp, cfgpp_fields, check_interval,
                              classifier_free, classifier_guidance, dps, guided_sample,
                              inpainting, observation_energy, off_the_shelf_guidance,
                              posterior_mean_value, reconstruction_guidance,
                              saved_fraction, self_guidance, softplus_relu, svdd)
from diffjax.guidance.build import GuidanceContext, build_guidance
from diffjax.paths import build_path
from diffjax.solvers import sample

VP = build_path("vp")
TASK = two_class_mixture(separation=1.0, std=0.7)
N = 512


def _model(path, labels, num_classes=2):
  cond, null = class_condition(labels, num_classes)
  return ConditionalModel(TASK.fields_of(path), cond, null)


def _x0(path, n=N, dim=2, seed=0):
  return path.source_sample(jax.random.PRNGKey(seed), (n, dim))


@jax.jit
def _cfg_samples(labels, w):
  return sample("dpm_solver_pp_2m", classifier_free(_model(VP, labels), w), VP, _x0(VP),
                num_steps=12).x


@jax.jit
def _plain_samples(labels):
  return sample("dpm_solver_pp_2m", TASK.fields(VP, labels), VP, _x0(VP), num_steps=12).x


def test_cfg_w1_is_the_conditional_sampler_and_w0_the_unconditional():
  """To float32 rounding (u + 1 (c - u) vs c; one batched call vs separate calls)."""
  labels = jnp.arange(N) % 2
  np.testing.assert_allclose(_cfg_samples(labels, 1.0), _plain_samples(labels), atol=2e-5)
  np.testing.assert_allclose(_cfg_samples(labels, 0.0),
                             _plain_samples(jnp.full((N,), 2)), atol=2e-5)


def test_cfgpp_lambda0_is_unconditional_ddim_and_differs_from_cfg_otherwise():
  labels = jnp.arange(N) % 2
  model, x0 = _model(VP, labels), _x0(VP)
  plain = sample("ddim", model.unconditional(), VP, x0, num_steps=12).x
  run = lambda lam: guided_sample(
      "ddim", Guidance(cfgpp_fields(model, VP, lam), lambda s, n: cfgpp(s, VP, n)), VP,
      x0, num_steps=12).x
  np.testing.assert_allclose(run(0.0), plain, atol=2e-5)
  cfg_half = sample("ddim", classifier_free(model, 0.5), VP, x0, num_steps=12).x
  assert float(jnp.max(jnp.abs(run(0.5) - cfg_half))) > 1e-2


def test_large_w_concentrates_on_the_class():
  """The fraction of class-1 samples on the class's side (x > 0) and their mean along the
  class axis grow with w: w = 0 is the unconditional mixture (mean 0, half on each side),
  w = 1 the exact conditional (mean +1, P(x > 0) = 0.9: a N(1, 0.7^2) mixture), and large
  w pushes mass away from the other class ("What does guidance do?", Chidambaram et al.
  2024). Monte-Carlo tolerance for 512 samples: 4 standard errors."""
  labels = jnp.ones(N, jnp.int32)
  stats = {}
  for w in (0.0, 1.0, 4.0):
    x = np.asarray(_cfg_samples(labels, w))
    stats[w] = (np.mean(x[:, 0] > 0), np.mean(x[:, 0]))
  se = 0.85 / np.sqrt(N)
  assert abs(stats[0.0][1]) < 4 * se and abs(stats[0.0][0] - 0.5) < 0.09
  assert abs(stats[1.0][1] - 1.0) < 4 * 0.7 / np.sqrt(N)
  assert abs(stats[1.0][0] - 0.923) < 0.05
  assert stats[4.0][0] > 0.99 and stats[4.0][1] > stats[1.0][1] + 0.3, stats


def test_exact_noise_aware_classifier_guidance_is_the_conditional_model():
  labels = jnp.arange(64) % 2
  model = _model(VP, labels)
  log_prob = lambda x, t: TASK.log_prob_class(VP, t, x, labels)
  guided = classifier_guidance(model.unconditional(), VP, log_prob, 1.0)
  x = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
  both = jax.jit(lambda x, t: (guided.evaluate(x, t), model.conditional().evaluate(x, t)))
  for t in (0.3, 0.7, 0.95):
    got, want = both(x, t)
    for name in ("score", "noise", "data", "velocity"):
      np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-3,
                                 atol=1e-3)


def test_guidance_interval_runs_the_conditional_model_outside():
  model = _model(VP, jnp.arange(N) % 2)
  x = jax.random.normal(jax.random.PRNGKey(4), (N, 2))
  fields = classifier_free(model, 3.0, (0.4, 0.8))
  evaluate = jax.jit(lambda t: (fields.evaluate(x, t).data,
                                model.conditional().evaluate(x, t).data,
                                classifier_free(model, 3.0).evaluate(x, t).data))
  interval, conditional, _ = evaluate(0.2)
  np.testing.assert_allclose(interval, conditional, atol=1e-5)
  interval, _, guided = evaluate(0.6)
  np.testing.assert_allclose(interval, guided, atol=1e-5)


def test_adaptive_guidance_saves_calls_at_a_small_change():
  """threshold 1 never switches (CFG exactly, 2 evaluations per step); at 0.95 (mean
  cosine of the denoised estimates) it saves 10% of the calls at an RMS change of 0.036
  from CFG's samples (measured; tolerances 5-30% and 0.08)."""
  labels = jnp.arange(N) % 2
  model, x0 = _model(VP, labels), _x0(VP)
  cfg = sample("ddim", classifier_free(model, 2.0), VP, x0, num_steps=20).x

  def run(threshold):
    g = Guidance(model.conditional(),
                 lambda s, n: adaptive_guidance(s, model, 2.0, threshold, n, "data"))
    return guided_sample("ddim", g, VP, x0, num_steps=20)

  never = run(1.0)
  np.testing.assert_allclose(never.x, cfg, atol=1e-5)
  assert int(never.nfe) == 40
  some = run(0.95)
  assert 0.05 <= saved_fraction(some.nfe, 20) <= 0.3
  assert float(jnp.sqrt(jnp.mean((some.x - cfg) ** 2))) < 0.08


def test_svdd_approaches_the_tilted_gaussian_as_m_grows():
  """Prior N(0.5, 1), reward r = x, alpha = 1: target N(1.5, 1). With exact fields and
  ancestral steps (100, whose own variance is 0.89 at M = 1) the mean is 0.5 at M = 1
  (tolerance 0.1 = 4.5 standard errors) and within 0.3 of 1.5 at M = 8 (measured 0.50,
  1.31; 1.39 at M = 32, see `python -m benchmarks.guidance`)."""
  prior = GaussianMixture(jnp.ones(1), jnp.array([[0.5]]), jnp.ones((1, 1, 1)))
  fields = mixture_oracle(VP, prior).fields()
  x0 = _x0(VP, 2000, 1)
  means = {}
  for m in (1, 8):
    g = Guidance(fields, lambda s, n, m=m: svdd(
        s, posterior_mean_value(lambda x1: x1[:, 0]), m, 1.0, shared_evaluation=True))
    result = guided_sample("ancestral", g, VP, x0, jax.random.PRNGKey(1), num_steps=100)
    means[m] = float(jnp.mean(result.x))
    assert int(result.nfe) == 100 * (1 + m)
  assert abs(means[1] - 0.5) < 0.1
  assert abs(means[8] - 1.5) < 0.3


def _linear_gaussian():
  cov = jnp.array([[1.0, 0.6], [0.6, 1.0]])
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), cov[None])
  a, noise_std, y = jnp.array([[1.0, 0.0]]), 0.3, jnp.array([1.5])
  gain = cov @ a.T / (a @ cov @ a.T + noise_std ** 2)
  return prior, a, noise_std, y, gain @ y, cov - gain @ a @ cov


def test_dps_approaches_the_exact_posterior_of_a_linear_gaussian_problem():
  """Prior N(0, [[1, .6], [.6, 1]]), y = x_1 + N(0, 0.3^2) = 1.5: posterior mean (1.376,
  0.826), covariance [[0.083, 0.050], [0.050, 0.670]]. DPS (100 ancestral steps, zeta =
  0.05) measured mean (1.447, 0.803), covariance [[0.044, 0.050], [0.050, 0.669]]:
  tolerance 0.12 on the mean and 0.06 on the covariance; zeta = 0 is the prior. The
  dependence on zeta is in `python -m benchmarks.guidance`."""
  prior, a, _, y, mean, cov = _linear_gaussian()
  fields = mixture_oracle(VP, prior).fields()
  x0 = _x0(VP, 2000)
  ys = jnp.broadcast_to(y, (2000, 1))
  op = lambda x: x @ a.T
  run = lambda zeta: np.asarray(guided_sample(
      "ancestral", Guidance(fields, lambda s, n: dps(s, op, ys, zeta, n)), VP, x0,
      jax.random.PRNGKey(1), num_steps=100).x)
  x = run(0.05)
  np.testing.assert_allclose(x.mean(0), mean, atol=0.12)
  np.testing.assert_allclose(np.cov(x.T), cov, atol=0.06)
  assert np.all(np.abs(run(0.0).mean(0)) < 0.1)


def test_tsdiff_squared_energy_is_gaussian_reconstruction_guidance():
  """exp(-s |m (x1 - y)|^2) is N(y; m x1, 1 / (2 s)) on the observed entries."""
  prior, *_ = _linear_gaussian()
  fields = mixture_oracle(VP, prior).fields()
  mask, y = jnp.array([[1.0, 0.0]]), jnp.tile(jnp.array([[1.2, 0.0]]), (8, 1))
  scale = 2.0
  ts = self_guidance(fields, VP, y, mask, scale)
  rg = reconstruction_guidance(fields, VP, inpainting(mask), y * mask, (2 * scale) ** -0.5)
  x = jax.random.normal(jax.random.PRNGKey(5), (8, 2))
  got, want = jax.jit(lambda x: (ts.evaluate(x, 0.6).score, rg.evaluate(x, 0.6).score))(x)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  pin = observation_energy(y, mask, "quantile", 0.9)
  np.testing.assert_allclose(pin(jnp.zeros((8, 2))), 0.9 * 1.2, rtol=1e-6)
  np.testing.assert_allclose(pin(jnp.full((8, 2), 2.0)), 0.1 * 0.8, rtol=1e-5)


def test_elucd_calibration_schedule_and_gradient_at_the_denoised_estimate():
  logits = jnp.array([[1.0, 2.0, -1.0]])
  labels = jnp.array([1])
  np.testing.assert_allclose(calibrated_log_prob(logits, labels, 1.0, 1.0),
                             jax.nn.log_softmax(logits)[:, 1], rtol=1e-6)
  np.testing.assert_allclose(calibrated_log_prob(logits, labels, 2.0, 0.5),
                             4.0 - jax.scipy.special.logsumexp(logits), rtol=1e-6)
  np.testing.assert_allclose(softplus_relu(1e4)(jnp.array([-1.0, 2.0])), [0.0, 2.0],
                             atol=1e-4)
  # A linear classifier f = W x1: grad_x1 log p~ = W_y - ratio tau1 softmax(tau2 f) W.
  prior, *_ = _linear_gaussian()
  fields = mixture_oracle(VP, prior).fields()
  w = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
  labels = jnp.zeros(4, jnp.int32)
  guided = off_the_shelf_guidance(fields, VP, lambda x1: x1 @ w.T, labels, 1.5, 1.0, 0.5,
                                  0.3)
  x, t = jax.random.normal(jax.random.PRNGKey(6), (4, 2)), 0.5
  plain, got = jax.jit(lambda x: (fields.evaluate(x, t), guided.evaluate(x, t).score))(x)
  grad = w[0][None] - 0.5 * jax.nn.softmax(0.5 * plain.data @ w.T) @ w
  want = plain.score + 1.5 * 1.3 * grad
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


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
    guided_sample("heun", build_guidance(_Section(section()), context), VP, x0,
                  num_steps=2)
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
    build_guidance(_Section(dict(method="dps")), context)


class _Section(dict):
  """A config section stand-in: attribute and .get access."""
  __getattr__ = dict.__getitem__
