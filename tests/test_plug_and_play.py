"""Plug-and-play conditioning at sampling time: Steered Diffusion's update against its
closed form on a Gaussian prior, its zero term when the condition is met, the renoising of
its consistency loop, its refusals, and the channel mixing of stacked views."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields
from diffjax.data import GaussianMixture, mixture_oracle
from diffjax.diagnostics import boundary
from diffjax.errors import ConfigError
from diffjax.fields import complete, gaussian_predictions
from diffjax.guidance import Guidance, steered
from diffjax.guidance.build import GuidanceContext, build_guidance, guidance_cost
from diffjax.guidance import ppap
from diffjax.guidance.model import ConditionalModel
from diffjax.guidance.steered import renoise_back
from diffjax.paths import build_path
from diffjax.plug_and_play import forward_models
from diffjax.plug_and_play import (DEGRADATIONS, LUMA_WEIGHTS, average_pool, cyclic_one_way,
                                   patch_mask, sdedit, stack_views, unstack_views)
from diffjax.solvers import SAMPLERS, sample

VP = build_path("vp")
COV = jnp.array([[1.0, 0.6], [0.6, 1.0]])
A = jnp.array([[1.0, 0.0]])


def _denoiser_matrix(t):
  """E[x1 | x_t] = M x_t for the prior N(0, C): M = alpha C (alpha^2 C + sigma^2 I)^-1."""
  al, sg = float(VP.gaussian.alpha(t)), float(VP.gaussian.sigma(t))
  return al * COV @ np.linalg.inv(al ** 2 * COV + sg ** 2 * np.eye(2))


def test_steered_step_is_ddim_from_the_steered_estimate_of_a_gaussian_prior():
  """x1~ = M x - eta grad_x |y - A M x|^2 = M x + 2 eta M^T A^T (y - A M x) (M symmetric
  here); DDIM then renoises from x1~: alpha' x1~ + sigma' (x - alpha x1~) / sigma."""
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), COV[None])
  fields = complete(mixture_oracle(VP, prior).fields(), VP)
  x = jax.random.normal(jax.random.PRNGKey(7), (8, 2))
  y = jnp.full((8, 1), 1.5)
  eta, t, t_next = 0.3, 0.4, 0.6
  stepper = steered(SAMPLERS.get("ddim").build(VP), lambda z: z @ A.T, y, eta, "ddim", VP)
  got = jax.jit(lambda x: stepper.step(fields, x, stepper.init(x, None), t, t_next,
                                       None)[0])(x)
  m = _denoiser_matrix(t)
  xn = np.asarray(x)
  x1 = xn @ m.T
  corrected = x1 + 2 * eta * (np.asarray(y) - x1 @ np.asarray(A).T) @ np.asarray(A) @ m
  view = VP.gaussian
  al, sg, al_n, sg_n = (float(f(s)) for f, s in ((view.alpha, t), (view.sigma, t),
                                                 (view.alpha, t_next), (view.sigma, t_next)))
  want = al_n * corrected + sg_n * (xn - al * corrected) / sg
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  plain = SAMPLERS.get("ddim").build(VP)
  unsteered = plain.step(fields, x, plain.init(x, None), t, t_next, None)[0]
  assert np.max(np.abs(np.asarray(got) - np.asarray(unsteered))) > 0.05


def test_steered_term_is_zero_when_the_condition_is_reproduced_exactly():
  """Steered to c = A(x1_hat(x, t)), the condition the model's own estimate reproduces,
  the gradient of |c - A(x1_hat)|^2 is zero: the step is plain DDIM's (on the Gaussian
  prior, a denoiser that depends on x); steered to c + 1 it is not. And a model whose
  estimate is one fixed 4x4 image z steered to c = A(z) (2x2 average pooling) gives the
  plain sampler's whole run bit for bit."""
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), COV[None])
  fields = complete(mixture_oracle(VP, prior).fields(), VP)
  x = jax.random.normal(jax.random.PRNGKey(8), (8, 2))
  t, t_next = 0.3, 0.5
  c = fields.evaluate(x, t).data @ A.T
  plain = SAMPLERS.get("ddim").build(VP)
  want = np.asarray(plain.step(fields, x, plain.init(x, None), t, t_next, None)[0])
  step = jax.jit(lambda c: (lambda s: s.step(fields, x, s.init(x, None), t, t_next, None)[0])(
      steered(plain, lambda z: z @ A.T, c, 0.5, "ddim", VP)))
  np.testing.assert_allclose(np.asarray(step(c)), want, atol=1e-6)
  assert np.max(np.abs(np.asarray(step(c + 1.0)) - want)) > 0.01

  z = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 4, 1))
  constant = Fields(lambda x, t: gaussian_predictions(z, x, t, VP.gaussian, "data"),
                    ("velocity", "score", "data", "noise"))
  pool = average_pool(2)
  x0 = VP.source_sample(jax.random.PRNGKey(2), z.shape)
  run = sample("ddim", constant, VP, x0, jax.random.PRNGKey(3), num_steps=6,
               guidance=Guidance(wrap=lambda s, n: steered(s, pool, pool(z), 0.5, n, VP))).x
  plain_run = sample("ddim", constant, VP, x0, jax.random.PRNGKey(3), num_steps=6).x
  np.testing.assert_array_equal(np.asarray(run), np.asarray(plain_run))


def test_consistency_loop_renoises_with_the_forward_transition():
  """q(x_t | x_s) composed with q(x_s | x1) is q(x_t | x1) = N(alpha_t x1, sigma_t^2 I):
  20,000 draws match mean and std to 0.03."""
  x1 = jnp.full((20000, 1), 0.8)
  s, t = 0.7, 0.3
  k1, k2 = jax.random.split(jax.random.PRNGKey(4))
  view = VP.gaussian
  xs = view.alpha(s) * x1 + view.sigma(s) * jax.random.normal(k1, x1.shape)
  xt = np.asarray(renoise_back(view, xs, s, t, k2))
  assert abs(xt.mean() - float(view.alpha(t)) * 0.8) < 0.03
  assert abs(xt.std() - float(view.sigma(t))) < 0.03


def test_steered_is_a_registered_restoring_method_with_its_declared_cost():
  model = ConditionalModel(lambda cond: mixture_oracle(VP, GaussianMixture(
      jnp.ones(1), jnp.zeros((1, 2)), COV[None])).fields(), None, None)
  y = jnp.full((16, 1), 1.0)
  context = GuidanceContext(model, VP, "ddim", measurements=y, operator=lambda z: z @ A.T,
                            state_shape=(16, 2))
  guidance = build_guidance(dict(method="steered", step_size=0.2, loops=2), context)
  x0 = VP.source_sample(jax.random.PRNGKey(5), (16, 2))
  result = sample("ddim", None, VP, x0, jax.random.PRNGKey(6), num_steps=4,
                  guidance=guidance)
  assert int(result.nfe) == 4 * 2
  assert guidance_cost(dict(method="steered", loops=3), "ddim") == (3.0, True)


def test_bad_input_is_refused_with_one_clear_line():
  model = ConditionalModel(lambda cond: None, None, None)
  context = GuidanceContext(model, VP, "ddim", measurements=jnp.zeros((4, 3)),
                            operator=lambda z: z @ A.T, state_shape=(4, 2))
  with pytest.raises(ConfigError, match=r"maps states \(4, 2\) to \(4, 1\)"):
    build_guidance(dict(method="steered"), context)
  for section, pattern in ((dict(method="steered", loops=0), "loops"),
                           (dict(method="steered", step_size=-1.0), "eta"),
                           (dict(method="steered", step_size="big"), "step_size")):
    with pytest.raises(ConfigError, match=pattern):
      build_guidance(section, context)
  with pytest.raises(ConfigError, match="once per step"):
    build_guidance(dict(method="steered"), context._replace(sampler="heun"))
  with pytest.raises(ConfigError, match=r"factor 3 needs .* valid: \[1, 2, 4, 8\]"):
    DEGRADATIONS.get("super_resolution").operator((8, 8, 1), 3)


def _gaussian_fields():
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), COV[None])
  return complete(mixture_oracle(VP, prior).fields(), VP)


def test_cow_with_an_empty_patch_and_no_cycles_is_the_plain_sampler():
  """Nothing to re-impose and no cycle: COW's three stretches are the plain DDIM grid, bit
  for bit; with a patch, the patch of the result is the seed exactly (re-imposed at t = 1)."""
  fields = _gaussian_fields()
  x0 = VP.source_sample(jax.random.PRNGKey(9), (64, 2))
  plain = sample("ddim", fields, VP, x0, num_steps=10).x
  empty = jnp.zeros((1, 2))
  got = cyclic_one_way("ddim", fields, VP, jnp.zeros((64, 2)), empty, x0,
                       jax.random.PRNGKey(10), num_steps=10, cycles=0)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(plain))
  seed = jnp.full((64, 2), 1.5)
  kept = cyclic_one_way("ddim", fields, VP, seed, jnp.array([[1.0, 0.0]]), x0,
                        jax.random.PRNGKey(10), num_steps=10, cycles=1)
  np.testing.assert_array_equal(np.asarray(kept[:, 0]), np.full(64, 1.5, np.float32))


def test_cow_cycles_bring_the_free_part_towards_the_exact_conditional():
  """Prior N(0, [[1, .6], [.6, 1]]) on the rectified-flow path, the first coordinate kept
  at 1.5: the exact conditional of the second is N(0.9, 0.64). Re-imposing alone (no
  cycle) propagates the seed weakly (mean 0.30, RePaint's observation); ten cycles between
  t_a = 0.5 and t_b = 0.9 harmonise (mean 0.64, variance 0.71 -> 0.63; 2,000 draws)."""
  path = build_path("rectified_flow")
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), COV[None])
  fields = complete(mixture_oracle(path, prior).fields(), path)
  x0 = path.source_sample(jax.random.PRNGKey(11), (2000, 2))
  seed, mask = jnp.full((2000, 2), 1.5), jnp.array([[1.0, 0.0]])
  run = lambda cycles: np.asarray(cyclic_one_way(
      "ddim", fields, path, seed, mask, x0, jax.random.PRNGKey(12), num_steps=20,
      cycle_start=0.5, cycle_end=0.9, cycles=cycles))[:, 1]
  none, many = run(0), run(10)
  assert abs(none.mean() - 0.3) < 0.06 and abs(many.mean() - 0.64) < 0.06
  assert abs(many.var() - 0.64) < abs(none.var() - 0.64)


def test_sdedit_from_pure_noise_is_the_plain_sampler_and_patches_must_fit():
  """On the rectified-flow path x_0 is the source draw itself: SDEdit from t_s = 0 ignores
  the canvas and is the plain sampler, bit for bit."""
  path = build_path("rectified_flow")
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), COV[None])
  fields = complete(mixture_oracle(path, prior).fields(), path)
  x0 = path.source_sample(jax.random.PRNGKey(13), (16, 2))
  np.testing.assert_array_equal(
      np.asarray(sdedit("ddim", fields, path, jnp.ones((16, 2)), x0, None, num_steps=8,
                        start=0.0)),
      np.asarray(sample("ddim", fields, path, x0, num_steps=8).x))
  with pytest.raises(ConfigError, match=r"top=6, left=2\) of size 4 is not inside the 8x8"):
    patch_mask(6, 2, 4, (8, 8, 1))
  with pytest.raises(ConfigError, match="t_a=0.7, t_b=0.3"):
    cyclic_one_way("ddim", fields, path, x0, jnp.zeros((1, 2)), x0, jax.random.PRNGKey(0),
                   num_steps=8, cycle_start=0.7, cycle_end=0.3)


def test_critical_time_is_where_the_norms_enter_the_gaussian_annulus():
  """Data N(0, m I_64), m = 0.3, noised along the rectified-flow path (the exact
  inversion's marginals): |x_t| ~ sqrt(64 (t^2 m + (1 - t)^2)), inside the relative
  tolerance 2 / sqrt(128) = 0.177 of the radius 8 for t <= t* = 0.183 (the root of
  t^2 m + (1 - t)^2 = 0.823^2): the found time is the grid's first time below t*."""
  path = build_path("rectified_flow")
  ts = np.linspace(0.999, 0.0, 41)
  x1 = np.sqrt(0.3) * jax.random.normal(jax.random.PRNGKey(14), (2000, 8, 8, 1))
  eps = jax.random.normal(jax.random.PRNGKey(15), x1.shape)
  trajectory = np.stack([path.interpolate(jnp.full((2000,), t), eps, x1) for t in ts])
  tol = boundary.default_tolerance(64)
  a, b, c = 1.3, -2.0, 1.0 - (1 - tol) ** 2
  t_star = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)
  assert abs(t_star - 0.183) < 0.005
  found = boundary.critical_time(trajectory, ts)
  assert found == ts[ts <= t_star][0]
  with pytest.raises(ConfigError, match="end .* from the Gaussian annulus"):
    boundary.critical_time(trajectory[:10], ts[:10])


def test_ppap_experts_are_chosen_by_the_interval_of_t():
  """Expert k returns constant logits e_k: at t in [b_k, b_{k+1}) the log-probability is
  expert k's (t = 1 the last expert's); one expert over [0, 1] is the single classifier."""
  experts = [jnp.log(jnp.array([0.7, 0.3])), jnp.log(jnp.array([0.2, 0.8])),
             jnp.log(jnp.array([0.5, 0.5]))]
  apply = lambda p, x, t: jnp.broadcast_to(p, (x.shape[0], 2))
  labels = jnp.array([1, 1])
  log_prob = ppap.expert_log_prob(apply, experts, (0.0, 0.2, 0.6, 1.0), labels)
  x = jnp.zeros((2, 3))
  for t, want in ((0.0, 0.3), (0.19, 0.3), (0.2, 0.8), (0.59, 0.8), (0.6, 0.5), (1.0, 0.5)):
    np.testing.assert_allclose(np.exp(log_prob(x, t)), [want, want], rtol=1e-5)
  single = ppap.expert_log_prob(apply, experts[:1], ppap.uniform_boundaries(1), labels)
  np.testing.assert_allclose(np.exp(single(x, 0.9)), [0.3, 0.3], rtol=1e-5)
  for bad in ((0.0, 0.5), (0.1, 1.0), (0.0, 0.6, 0.4, 1.0), (0.0, 1.0, 1.0)):
    with pytest.raises(ConfigError, match="increase from 0 to 1"):
      ppap.check_boundaries(bad)


def test_ppap_transfer_loss_is_the_kl_to_the_teacher_plus_its_entropy():
  """Cross-entropy to soft targets q: -sum q log p = KL(q || p) + H(q); an expert that
  outputs the teacher's logits everywhere reaches its minimum H(q)."""
  q = jnp.array([[0.6, 0.3, 0.1]] * 4)
  apply = lambda p, x, t: jnp.broadcast_to(p, (x.shape[0], 3))
  x1 = jnp.zeros((4, 2))
  x0 = jnp.ones((4, 2))
  entropy = float(-jnp.sum(q[0] * jnp.log(q[0])))
  at_teacher, aux = ppap.transfer_loss(VP, apply, jnp.log(q[0]), jax.random.PRNGKey(0), x0,
                                       x1, q, (0.2, 0.4))
  np.testing.assert_allclose(float(at_teacher), entropy, rtol=1e-5)
  assert float(aux["agreement"]) == 1.0
  p = jnp.array([0.2, 0.5, 0.3])
  other, _ = ppap.transfer_loss(VP, apply, jnp.log(p), jax.random.PRNGKey(0), x0, x1, q,
                                (0.2, 0.4))
  kl = float(jnp.sum(q[0] * jnp.log(q[0] / p)))
  np.testing.assert_allclose(float(other), entropy + kl, rtol=1e-5)


def test_dfm_loss_reads_observations_only_and_is_the_data_loss_when_all_is_seen():
  """The loss changes with x only through F(x, phi) = m * x: x altered where neither mask
  looks leaves it unchanged; with every pixel observed and an empty context it is the
  ordinary data-prediction loss |x_hat - x|^2 per pixel (the same draws of tau and eps)."""
  path = build_path("rectified_flow")
  x = jax.random.normal(jax.random.PRNGKey(16), (6, 4, 4, 1))
  masks = forward_models.half_masks((4, 4, 1))
  denoise = lambda params, inputs, tau: jnp.tanh(inputs[..., :1] * params + tau[:, None, None,
                                                                                  None])
  key = jax.random.PRNGKey(17)
  target, context = masks[jnp.array([0, 1, 2, 3, 0, 2])], masks[jnp.array([2, 3, 0, 1, 2, 0])]
  unseen = (1 - target) * (1 - context)
  base = forward_models.dfm_loss(path, denoise, 0.7, key, x, target, context)
  moved = forward_models.dfm_loss(path, denoise, 0.7, key, x + 5.0 * unseen, target, context)
  assert float(base) == float(moved)
  full, empty = jnp.ones_like(x), jnp.zeros_like(x)
  got = forward_models.dfm_loss(path, denoise, 0.7, key, x, full, empty)
  k_tau, k_eps = jax.random.split(key)
  tau = jax.random.uniform(k_tau, (6,))
  col = tau[:, None, None, None]
  noisy = col * x + (1 - col) * jax.random.normal(k_eps, x.shape)
  x_hat = jnp.tanh(noisy * 0.7 + col)
  np.testing.assert_allclose(float(got), float(jnp.mean(jnp.sum(
      ((x_hat - x) ** 2).reshape(6, -1), -1) / 16)), rtol=1e-5)


def test_dfm_sampler_with_everything_observed_is_ddim():
  """With every pixel the target and the exact denoiser of a Gaussian prior, DFM's sampler
  is DDIM on the signal: its last estimate's DDIM step is the DDIM sample."""
  path = build_path("rectified_flow")
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), COV[None])
  fields = complete(mixture_oracle(path, prior).fields(), path)
  denoise = lambda params, inputs, tau: fields.evaluate(inputs[:, :, 0], tau[0]).data[:, :, None]
  full = jnp.ones((500, 2, 1))
  key = jax.random.PRNGKey(18)
  got = forward_models.dfm_sample(path, denoise, None, key, full, jnp.zeros_like(full),
                                  jnp.zeros_like(full), 10)
  x0 = jax.random.normal(key, (500, 2, 1))[:, :, 0]
  want = sample("ddim", fields, path, x0, num_steps=10).x
  np.testing.assert_allclose(np.asarray(got[:, :, 0]), np.asarray(want), atol=2e-3)


def test_channel_mixing_is_the_luma_of_three_stacked_digits():
  """Three images stacked as R, G, B (`stack_views`, inverted by `unstack_views`); the
  observation is 0.299 R + 0.587 G + 0.114 B; the residual's gradient on the stacked
  state reaches exactly the three views of each image, as -2 w_c (y - A x)."""
  x = jax.random.uniform(jax.random.PRNGKey(0), (6, 8, 8, 1), minval=-1, maxval=1)
  image = stack_views(x, 3)
  assert image.shape == (2, 8, 8, 3)
  np.testing.assert_array_equal(image[1, ..., 2], x[5, ..., 0])
  np.testing.assert_array_equal(unstack_views(image, 3), x)
  entry = DEGRADATIONS.get("channel_mixing")
  assert entry.views == 3 and entry.image_shape((8, 8, 1)) == (8, 8, 3)
  operator = entry.operator((8, 8, 3))
  y = np.asarray(operator(image))
  np.testing.assert_allclose(y[..., 0], 0.299 * x[0::3, ..., 0] + 0.587 * x[1::3, ..., 0]
                             + 0.114 * x[2::3, ..., 0], rtol=1e-6, atol=1e-6)
  target = y + np.arange(2, dtype=np.float32)[:, None, None, None]   # residual 0 and 1
  energy = lambda s: jnp.sum((target - operator(stack_views(s, 3))) ** 2)
  gradient = np.asarray(jax.grad(energy)(x))
  np.testing.assert_allclose(gradient[:3], 0.0, atol=1e-6)   # image 0 is reproduced
  for c, w in enumerate(LUMA_WEIGHTS):
    np.testing.assert_allclose(gradient[3 + c], -2 * w, rtol=1e-5)
  with pytest.raises(ConfigError, match="luma of 3-channel images"):
    entry.operator((8, 8, 1))
