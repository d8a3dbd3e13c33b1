"""Prediction conversions (exact round trips on every Gaussian path; data and noise from
velocity and score on interpolants), completing fields, the Gaussian-mixture oracle and EDM
preconditioning."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax import fields as F
from diffjax.core import Fields
from diffjax.data import GaussianMixture, MixtureOracle, isotropic_mixture, mixture_oracle
from diffjax.paths import build_path
from diffjax.registry import UnknownComponentError

PATHS = {"vp": {}, "sub_vp": {}, "iddpm_cosine": {}, "ve": {"sigma_max": 20.0}, "edm": {},
         "rectified_flow": {}}
NAMES = ("noise", "data", "score", "v", "velocity")
MIX = GaussianMixture(jnp.array([0.4, 0.6]), jnp.array([[-1.0, 0.5], [1.5, -0.5]]),
                      jnp.array([[[0.6, 0.2], [0.2, 0.5]], [[0.4, 0.0], [0.0, 0.9]]]))


@pytest.mark.parametrize("name", sorted(PATHS))
def test_conversions_recover_true_targets_and_round_trip(name):
  path = build_path(name, **PATHS[name]).gaussian
  key1, key2 = jax.random.split(jax.random.PRNGKey(0))
  x1, eps = jax.random.normal(key1, (6, 3)), jax.random.normal(key2, (6, 3))
  t = jnp.linspace(0.1, 0.9, 6)
  col = lambda c: c[:, None]
  a, s, da, ds = (col(fn(t)) for fn in (path.alpha, path.sigma, path.dalpha, path.dsigma))
  x = a * x1 + s * eps
  truth = {"noise": eps, "data": x1, "score": -eps / s, "v": a * eps - s * x1,
           "velocity": da * x1 + ds * eps}
  for src, dst in itertools.product(NAMES, NAMES):
    out = F.convert(truth[src], x, t, path, src, dst)
    scale = float(jnp.max(jnp.abs(truth[dst]))) + 1.0
    np.testing.assert_allclose(out, truth[dst], atol=2e-4 * scale, err_msg=f"{src}->{dst}")
    back = F.convert(out, x, t, path, dst, src)
    scale = float(jnp.max(jnp.abs(truth[src]))) + 1.0
    np.testing.assert_allclose(back, truth[src], atol=2e-4 * scale, err_msg=f"{src}<->{dst}")


@pytest.mark.parametrize("name", ["vp", "ve", "rectified_flow"])
def test_mixture_oracle_score_velocity_and_data(name):
  path = build_path(name, **PATHS[name])
  view = path.gaussian
  oracle = mixture_oracle(path, MIX)
  fields = oracle.fields()
  x = jax.random.normal(jax.random.PRNGKey(3), (5, 2)) * 2

  @jax.jit
  def check(t):
    log_p = lambda y: oracle.marginal(t).log_prob(y[None])[0]
    # Probability-flow drift (alpha'/alpha) x + sigma^2 lambda' score (score-SDE eq. 13).
    out = fields.evaluate(x, t)
    drift = (view.dalpha(t) / view.alpha(t) * x
             + view.sigma(t) ** 2 * view.dlog_snr(t) * out.score)
    # Tweedie: E[x1 | x] = (x + sigma^2 score) / alpha.
    tweedie = (x + view.sigma(t) ** 2 * out.score) / view.alpha(t)
    return out, jax.vmap(jax.grad(log_p))(x), drift, tweedie

  for t in (0.2, 0.5, 0.8):
    out, autodiff, drift, tweedie = check(jnp.float32(t))
    np.testing.assert_allclose(out.score, autodiff, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.velocity, drift, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.data, tweedie, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(out.noise, -view.sigma(t) * out.score, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,options", [("linear", {"gamma": "sqrt", "gamma_scale": 0.8}),
                                          ("vp_cfm", {"gamma": "sin2", "gamma_scale": 0.4}),
                                          ("linear", {})])
def test_interpolant_data_prediction_from_velocity_and_score(name, options):
  """E[x1 | x_t] from b and s (the `diffjax.fields` docstring) equals the oracle's own
  posterior mean between two mixtures; for gamma = 0 the velocity alone gives it."""
  path = build_path(name, **options)
  rho0 = isotropic_mixture([0.5, 0.5], [[-2.0, 0.0], [0.0, 2.0]], 0.5)
  oracle = MixtureOracle(path, rho0, MIX)
  x = jax.random.normal(jax.random.PRNGKey(7), (6, 2))
  for t in (0.25, 0.6):
    t = jnp.float32(t)
    score = oracle.score(x, t) if path.has_noise else None
    out = F.interpolant_predictions(path, x, t, oracle.velocity(x, t), score)
    np.testing.assert_allclose(out.data, oracle.data(x, t), rtol=1e-3, atol=1e-3)
    if path.has_noise:
      np.testing.assert_allclose(out.noise, oracle.noise(x, t), rtol=1e-4, atol=1e-5)


def test_complete_derives_every_prediction_on_a_gaussian_path_from_any_one():
  path = build_path("vp")
  exact = mixture_oracle(path, MIX).fields()
  x = jax.random.normal(jax.random.PRNGKey(8), (4, 2))
  t = jnp.float32(0.7)
  truth = exact.evaluate(x, t)
  for name in ("velocity", "score", "data", "noise"):
    one = Fields.of(**{name: getattr(exact, name)})
    full = F.complete(one, path)
    assert set(full.names) == {"velocity", "score", "data", "noise"}
    out = full.evaluate(x, t)
    for other in full.names:
      np.testing.assert_allclose(getattr(out, other), getattr(truth, other), rtol=2e-3,
                                 atol=2e-3, err_msg=f"{name} -> {other}")
  tokens = Fields.of(logits=lambda x, t: x[..., None])
  assert F.complete(tokens, path) is tokens
  noisy = build_path("linear", gamma="sqrt")
  velocity_only = Fields.of(velocity=exact.velocity)
  assert F.complete(velocity_only, noisy).names == ("velocity",)


def test_mixture_log_prob_matches_data_module_without_strict_promotion():
  x = jax.random.normal(jax.random.PRNGKey(4), (7, 2))
  with jax.numpy_rank_promotion("allow"):
    expected = MIX.log_prob(x)
  np.testing.assert_allclose(MIX.log_prob(x), expected, rtol=1e-5)


def test_gaussian_fields_of_a_noise_network_are_exact():
  path = build_path("vp")
  exact = mixture_oracle(path, MIX).fields()
  noise_net = lambda x, t: exact.evaluate(x, t).noise
  derived = F.gaussian_fields(noise_net, path, "noise")
  x = jax.random.normal(jax.random.PRNGKey(5), (4, 2))
  for t in (0.1, 0.6, 0.95):
    out, truth = derived.evaluate(x, t), exact.evaluate(x, t)
    np.testing.assert_allclose(out.velocity, truth.velocity, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out.score, truth.score, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.data, truth.data, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(out.noise, noise_net(x, t))


def test_edm_preconditioning_gives_unit_variance_inputs_and_targets():
  """Karras et al., Sec. 5 / Appendix B.6: with data of std sigma_data, c_in x~ and the
  effective target (x1 - c_skip x~) / c_out have unit variance at every noise level."""
  sd = 0.5
  key1, key2 = jax.random.split(jax.random.PRNGKey(6))
  x1 = sd * jax.random.normal(key1, (200_000,))
  n = jax.random.normal(key2, (200_000,))
  for level in (0.01, 0.5, 3.0, 80.0):
    c_skip, c_out, c_in, c_noise = F.edm_preconditioning(jnp.float32(level), sd)
    xt = x1 + level * n
    np.testing.assert_allclose(np.var(c_in * xt), 1.0, rtol=0.02)
    np.testing.assert_allclose(np.var((x1 - c_skip * xt) / c_out), 1.0, rtol=0.02)
    np.testing.assert_allclose(c_noise, np.log(level) / 4, rtol=1e-6)


def test_edm_denoiser_with_zero_network_is_c_skip_times_scaled_input():
  path = build_path("vp").gaussian
  denoise = F.edm_denoiser(lambda p, x, t, c: jnp.zeros_like(x), None, path, 0.5)
  x, t = jnp.ones((3, 2)), jnp.float32(0.7)
  level = path.sigma(t) / path.alpha(t)
  np.testing.assert_allclose(denoise(x, t), 0.25 / (level ** 2 + 0.25) * x / path.alpha(t),
                             rtol=1e-5)


def test_unknown_prediction_lists_valid_names():
  with pytest.raises(UnknownComponentError) as info:
    F.convert(jnp.ones((1, 2)), jnp.ones((1, 2)), 0.5, build_path("vp").gaussian, "eps",
              "data")
  for name in NAMES:
    assert name in str(info.value)
