"""Plug-and-play conditioning at sampling time: Steered Diffusion's update against its
closed form on a Gaussian prior, its zero term when the condition is met, the renoising of
its consistency loop, and its refusals."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields
from diffjax.data import GaussianMixture, mixture_oracle
from diffjax.errors import ConfigError
from diffjax.fields import complete, gaussian_predictions
from diffjax.guidance import Guidance, steered
from diffjax.guidance.build import GuidanceContext, build_guidance, guidance_cost
from diffjax.guidance.model import ConditionalModel
from diffjax.guidance.steered import renoise_back
from diffjax.paths import build_path
from diffjax.plug_and_play import DEGRADATIONS, average_pool
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
  with pytest.raises(ConfigError, match="even image size"):
    DEGRADATIONS.get("super_resolution").operator((7, 8, 1))
