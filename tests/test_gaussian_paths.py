"""Gaussian paths: closed-form schedules, derivatives, SDE coefficients, Monte Carlo
marginals of the forward SDE, the interpolant interface and the registry's errors."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.objectives import build_objective
from diffjax.paths import PATHS, build_path
from diffjax.registry import UnknownComponentError

GAUSSIAN = {"vp": {}, "sub_vp": {}, "iddpm_cosine": {}, "ve": {"sigma_max": 5.0},
            "edm": {"sigma_max": 5.0}, "rectified_flow": {}}
TS = jnp.linspace(0.0, 1.0, 41)


@pytest.mark.parametrize("name", sorted(GAUSSIAN))
def test_schedules_finite_monotone_and_derivatives_match_finite_differences(name):
  path = build_path(name, **GAUSSIAN[name]).gaussian
  for fn in (path.alpha, path.sigma, path.dalpha, path.dsigma):
    assert np.all(np.isfinite(np.asarray(fn(TS))))
  lam = np.asarray(path.log_snr(TS))
  assert np.all(np.diff(lam) > 0), "log-SNR must increase from noise to data"
  t = jnp.linspace(0.05, 0.95, 19)
  h = 1e-3
  for fn, dfn in ((path.alpha, path.dalpha), (path.sigma, path.dsigma)):
    fd = (fn(t + h) - fn(t - h)) / (2 * h)
    np.testing.assert_allclose(dfn(t), fd, rtol=2e-2, atol=2e-3)
  # log_snr is inverted by bisection to float32 precision.
  lam_mid = path.log_snr(t)
  np.testing.assert_allclose(path.time_at_log_snr(lam_mid), t, atol=1e-4)



# float64 references of (alpha(t), sigma(t)) at the default options, from each paper's
# formula, written so that numpy evaluates them at complex t: the derivatives are then
# exact to float64 rounding by the complex step f'(t) = Im f(t + ih) / h ("Using complex
# variables to estimate derivatives of real functions", Squire & Trapp, 1998), with no
# cancellation at t = 0 or 1, where finite differences lose digits.
def _sde_time(t, s_min, s_max):
  return s_min + (s_max - s_min) * (1 - t)


def _vp_alpha(t):
  s = _sde_time(t, 1e-3, 1.0)
  return np.exp(-0.25 * s ** 2 * (20.0 - 0.1) - 0.5 * s * 0.1)


def _cosine_alpha(t, c=0.008):
  f = lambda s: np.cos((s + c) / (1 + c) * math.pi / 2) ** 2
  return np.sqrt(f(_sde_time(t, 1e-4, 0.9946)) / f(0.0))


FLOAT64_SCHEDULES = {
    "vp": lambda t: (_vp_alpha(t), np.sqrt(1 - _vp_alpha(t) ** 2)),
    "sub_vp": lambda t: (_vp_alpha(t), 1 - _vp_alpha(t) ** 2),
    "iddpm_cosine": lambda t: (_cosine_alpha(t), np.sqrt(1 - _cosine_alpha(t) ** 2)),
    "ve": lambda t: (np.ones_like(t), 0.01 * (50.0 / 0.01) ** (1 - t)),
    "edm": lambda t: (np.ones_like(t),
                      (80.0 ** (1 / 7) + t * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7),
    "rectified_flow": lambda t: (t, 1 - t),
    "one_sided_trigonometric": lambda t: (np.sin(math.pi * t / 2), np.cos(math.pi * t / 2)),
    "lipman": lambda t: (t, 1 - t),
}


def test_every_gaussian_path_has_a_float64_reference():
  """Every continuous one-sided path; the discrete DDPM schedule is checked against
  diffusers' alphas_cumprod instead (tests/test_peer_diffusers_schedules.py), and token
  paths (built with their vocabulary) are not Gaussian."""
  options = {"masked": {"vocab_size": 4}}
  paths = {n: build_path(n, **options.get(n, {})) for n in PATHS.names()}
  gaussian = sorted(n for n, p in paths.items() if n != "ddpm_discrete" and p.one_sided
                    and getattr(p, "gaussian", None) is not None)
  assert gaussian == sorted(FLOAT64_SCHEDULES)


@pytest.mark.parametrize("name", sorted(FLOAT64_SCHEDULES))
def test_coefficients_and_derivatives_are_float32_accurate_up_to_both_ends(name):
  """alpha, sigma, alpha', sigma' within a few float32 roundings of float64, t = 0 and 1
  included: VP's and sub-VP's sigma' at t = 0 were 6.4e-4 off (autodiff of expm1), the
  cosine schedule's alpha at t = 0 1e-5 (a cosine near pi / 2), and the trigonometric
  sigma(1) was -4e-8, not 0."""
  t = np.array([0.0, 1e-4, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0],
               np.float32)
  h = 1e-30
  alpha, sigma = FLOAT64_SCHEDULES[name](t.astype(np.float64) + 1j * h)
  expected = (alpha.real, sigma.real, alpha.imag / h, sigma.imag / h)
  path = build_path(name).gaussian
  for fn, want in zip((path.alpha, path.sigma, path.dalpha, path.dsigma), expected):
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(t)), np.float64), want, rtol=3e-6,
                               atol=1e-12, err_msg=f"{name} {fn.__name__}")


def test_vp_and_sub_vp_match_score_sde_closed_forms():
  vp, sub = build_path("vp").gaussian, build_path("sub_vp").gaussian
  t = jnp.linspace(0.0, 1.0, 11)
  s = 1 - (1 - 1e-3) * np.asarray(t, np.float64)                      # the documented map to score-SDE time
  log_alpha = -(0.25 * s ** 2 * (20 - 0.1) + 0.5 * s * 0.1)
  np.testing.assert_allclose(vp.alpha(t), np.exp(log_alpha), rtol=1e-5)
  np.testing.assert_allclose(vp.sigma(t) ** 2, -np.expm1(2 * log_alpha), rtol=1e-4)
  np.testing.assert_allclose(sub.sigma(t), -np.expm1(2 * log_alpha), rtol=1e-4)
  # Forward-SDE diffusion in diffjax time (Song et al., eq. 11): g^2 = beta(s) |ds/dt| (VP),
  # beta(s) (1 - e^{-2 int beta}) |ds/dt| = beta (1 - alpha^4) |ds/dt| (sub-VP).
  beta = 0.1 + s * (20 - 0.1)
  tt = t[:-1]
  np.testing.assert_allclose(vp.forward_sde(tt)[1] ** 2, (beta * (1 - 1e-3))[:-1], rtol=1e-3)
  np.testing.assert_allclose(sub.forward_sde(tt)[1] ** 2,
                             (beta * (1 - 1e-3) * -np.expm1(4 * log_alpha))[:-1], rtol=1e-3)
  np.testing.assert_allclose(vp.reverse_sde_eps(tt), 0.5 * vp.forward_sde(tt)[1] ** 2, rtol=1e-5)


def test_ve_and_edm_match_their_papers():
  ve_path = build_path("ve", sigma_min=0.01, sigma_max=50.0)
  ve = ve_path.gaussian
  np.testing.assert_allclose(ve.sigma(jnp.array([0.0, 1.0])), [50.0, 0.01], rtol=1e-5)
  np.testing.assert_allclose(float(ve_path.source_std), 50.0, rtol=1e-5)
  np.testing.assert_allclose(ve.forward_sde(0.3)[1] ** 2,
                             2 * ve.sigma(0.3) ** 2 * math.log(5000), rtol=1e-4)
  edm = build_path("edm").gaussian
  i = jnp.arange(11)
  karras = (80 ** (1 / 7) + i / 10 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7   # eq. 5
  np.testing.assert_allclose(edm.sigma(i / 10), karras, rtol=1e-4)


@pytest.mark.parametrize("name", ["vp", "sub_vp", "ve", "rectified_flow"])
def test_marginals_match_monte_carlo_of_the_forward_sde(name):
  """Simulate dx = f x ds + g dW (ds = -dt) from x1 at t = 1 down to t = 0.3 and compare the
  law with N(alpha x1, sigma^2 I): 4 standard errors plus 3% discretisation slack."""
  path = build_path(name, **GAUSSIAN[name]).gaussian
  x1 = jnp.array([1.5, -2.0])
  n, steps, t_end = 4000, 400, 0.3
  ts = jnp.linspace(1.0, t_end, steps + 1)

  def step(x, inputs):
    i, t, t_next = inputs
    f, g = path.forward_sde(0.5 * (t + t_next))
    ds = t - t_next
    noise = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(0), i), x.shape)
    return x + f * x * ds + g * jnp.sqrt(ds) * noise, None

  x = jnp.broadcast_to(x1, (n, 2))
  x, _ = jax.jit(lambda x: jax.lax.scan(step, x, (jnp.arange(steps), ts[:-1], ts[1:])))(x)
  mean, std = path.marginal(jnp.float32(t_end), x1[None])
  mean, std = np.asarray(mean)[0], float(np.asarray(std).ravel()[0])
  se_mean = std / math.sqrt(n)
  np.testing.assert_allclose(np.mean(x, 0), mean, atol=4 * se_mean + 0.03 * np.abs(mean).max())
  se_var = std ** 2 * math.sqrt(2 / n)
  np.testing.assert_allclose(np.var(x, 0), std ** 2, atol=4 * se_var + 0.03 * std ** 2)


@pytest.mark.parametrize("name", sorted(GAUSSIAN))
def test_one_sided_path_interface_and_flow_matching(name):
  path = build_path(name, **GAUSSIAN[name])
  view = path.gaussian
  key = jax.random.PRNGKey(1)
  x1 = jax.random.normal(key, (8, 2)) + 3.0
  x0 = path.source_sample(jax.random.PRNGKey(2), (8, 2))
  np.testing.assert_allclose(np.std(path.source_sample(key, (20000, 1))),
                             float(path.source_std), rtol=0.03)
  # At t = 0 the path starts at the source sample (a(0) = 1), and b = alpha.
  np.testing.assert_allclose(path.interpolate(0.0, x0, x1) - float(view.alpha(0.0)) * x1, x0,
                             rtol=1e-5, atol=1e-4 * float(path.source_std))
  t = jnp.full((8,), 0.4)
  dt = jax.jvp(lambda s: path.interpolate(s, x0, x1), (t,), (jnp.ones_like(t),))[1]
  np.testing.assert_allclose(path.conditional_velocity(t, x0, x1), dt, rtol=1e-4, atol=1e-4)
  # x_t = alpha x1 + sigma z with z = x0 / sigma(0); sample() draws no extra noise.
  np.testing.assert_allclose(
      path.interpolate(t, x0, x1), view.alpha(0.4) * x1 + view.sigma(0.4) * x0 / path.source_std,
      rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(path.sample(key, t, x0, x1), path.interpolate(t, x0, x1))
  objective = build_objective("flow_matching", path)
  loss, _ = objective.loss(lambda p, x, t, c: p * x, 0.5, key, x0, x1)
  assert np.isfinite(float(loss))


def test_iddpm_cosine_keeps_float32_precision_at_the_data_end():
  """sigma(t) against a float64 evaluation of Nichol & Dhariwal's schedule: 1e-5 relative
  at every t including t = 1, where sqrt(1 - alpha^2) in float32 was 3e-3 off."""
  view = build_path("iddpm_cosine").gaussian
  t = np.linspace(0.0, 1.0, 21)
  s = 0.9946 - (0.9946 - 1e-4) * t
  f = lambda s: np.cos((s + 0.008) / 1.008 * np.pi / 2)
  alpha = f(s) / f(0.0)
  np.testing.assert_allclose(view.alpha(jnp.asarray(t, jnp.float32)), alpha, rtol=1e-5)
  np.testing.assert_allclose(view.sigma(jnp.asarray(t, jnp.float32)),
                             np.sqrt(1 - alpha ** 2), rtol=1e-5)


def test_unknown_path_lists_valid_names():
  with pytest.raises(UnknownComponentError) as info:
    build_path("vpp")
  for name in ("vp", "sub_vp", "iddpm_cosine", "ve", "edm", "rectified_flow", "lipman",
               "one_sided_trigonometric"):
    assert name in str(info.value)
  assert set(GAUSSIAN) <= set(PATHS.names())
