"""Prediction conversions (exact round trips on every path), the Gaussian-mixture oracle
and EDM preconditioning."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax import fields as F
from diffjax.data import GaussianMixture
from diffjax.paths import build_path, marginal_mixture
from diffjax.registry import UnknownComponentError

PATHS = {"vp": {}, "sub_vp": {}, "cosine": {}, "ve": {"sigma_max": 20.0}, "edm": {},
         "rectified_flow": {}}
NAMES = ("noise", "data", "score", "v", "velocity")
MIX = GaussianMixture(jnp.array([0.4, 0.6]), jnp.array([[-1.0, 0.5], [1.5, -0.5]]),
                      jnp.array([[[0.6, 0.2], [0.2, 0.5]], [[0.4, 0.0], [0.0, 0.9]]]))


@pytest.mark.parametrize("name", sorted(PATHS))
def test_conversions_recover_true_targets_and_round_trip(name):
  path = build_path(name, **PATHS[name])
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
def test_mixture_oracle_score_and_velocity(name):
  path = build_path(name, **PATHS[name])
  fields = F.gaussian_mixture_fields(MIX, path)
  x = jax.random.normal(jax.random.PRNGKey(3), (5, 2)) * 2

  @jax.jit
  def check(t):
    log_p = lambda y: marginal_mixture(path, MIX, t).log_prob(y[None])[0]
    # Probability-flow drift (alpha'/alpha) x + sigma^2 lambda' score (score-SDE eq. 13).
    drift = (path.dalpha(t) / path.alpha(t) * x
             + path.sigma(t) ** 2 * path.dlog_snr(t) * fields.score(x, t))
    return fields.score(x, t), jax.vmap(jax.grad(log_p))(x), fields.velocity(x, t), drift

  for t in (0.2, 0.5, 0.8):
    score, autodiff, velocity, drift = check(jnp.float32(t))
    np.testing.assert_allclose(score, autodiff, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(velocity, drift, rtol=1e-4, atol=1e-4)
    joint_velocity, joint_score = fields.velocity_and_score(x, jnp.float32(t))
    np.testing.assert_allclose(joint_velocity, velocity, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(joint_score, score, rtol=1e-4, atol=1e-5)


def test_mixture_log_prob_matches_data_module_without_strict_promotion():
  x = jax.random.normal(jax.random.PRNGKey(4), (7, 2))
  with jax.numpy_rank_promotion("allow"):
    expected = MIX.log_prob(x)
  np.testing.assert_allclose(MIX.log_prob(x), expected, rtol=1e-5)


def test_gaussian_fields_of_a_noise_network_are_exact():
  path = build_path("vp")
  exact = F.gaussian_mixture_fields(MIX, path)
  noise_net = lambda x, t: -path.sigma(t) * exact.score(x, t)
  derived = F.gaussian_fields(noise_net, path, "noise")
  x = jax.random.normal(jax.random.PRNGKey(5), (4, 2))
  for t in (0.1, 0.6, 0.95):
    np.testing.assert_allclose(derived.velocity(x, t), exact.velocity(x, t), rtol=1e-3,
                               atol=1e-4)
    np.testing.assert_allclose(derived.score(x, t), exact.score(x, t), rtol=1e-4, atol=1e-5)
    for joint, separate in zip(derived.velocity_and_score(x, t),
                               (derived.velocity(x, t), derived.score(x, t))):
      np.testing.assert_allclose(joint, separate, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(F.data_prediction(exact, path, x, t),
                               F.convert(exact.score(x, t), x, t, path, "score", "data"),
                               rtol=1e-3, atol=1e-3)


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
  path = build_path("vp")
  denoise = F.edm_denoiser(lambda p, x, t, c: jnp.zeros_like(x), None, path, 0.5)
  x, t = jnp.ones((3, 2)), jnp.float32(0.7)
  level = path.sigma(t) / path.alpha(t)
  np.testing.assert_allclose(denoise(x, t), 0.25 / (level ** 2 + 0.25) * x / path.alpha(t),
                             rtol=1e-5)


def test_unknown_prediction_lists_valid_names():
  with pytest.raises(UnknownComponentError) as info:
    F.convert(jnp.ones((1, 2)), jnp.ones((1, 2)), 0.5, build_path("vp"), "eps", "data")
  for name in NAMES:
    assert name in str(info.value)
