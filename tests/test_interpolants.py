"""Interpolant paths: boundary conditions, derivatives, gamma choices, user-defined paths."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.paths import GAMMAS, build_gamma, build_path, custom_interpolant

# (name, options, a(0), b(0), a(1), b(1)); gamma(0) = gamma(1) = 0 for all of them.
PATH_CASES = [
    ("linear", {}, 1, 0, 0, 1),
    ("linear", dict(gamma="sqrt", gamma_scale=0.7), 1, 0, 0, 1),
    ("trigonometric", {}, 1, 0, 0, 1),
    ("trigonometric", dict(gamma="quadratic"), 1, 0, 0, 1),
    ("vp_cfm", dict(gamma="sin2", gamma_scale=0.5), 1, 0, 0, 1),
    ("encoder_decoder", {}, 1, 0, 0, 1),
    ("one_sided_trigonometric", {}, 1, 0, 0, 1),
    ("mirror", {}, 0, 1, 0, 1),
    ("lipman", dict(sigma_min=0.1), 1, 0, 0.1, 1),
]
BRIDGE_GAMMAS = ["zero", "sqrt", "quadratic", "sin2", "sigmoid_bump"]
INTERIOR = jnp.array([0.05, 0.3, 0.5 - 1e-2, 0.62, 0.9])


@pytest.mark.parametrize("name,options,a0,b0,a1,b1", PATH_CASES)
def test_boundary_conditions(name, options, a0, b0, a1, b1):
  path = build_path(name, **options)
  (a_0, b_0, g_0), (a_1, b_1, g_1) = path.coefficients(0.0), path.coefficients(1.0)
  np.testing.assert_allclose([a_0, b_0, a_1, b_1], [a0, b0, a1, b1], atol=1e-6)
  np.testing.assert_allclose([g_0, g_1], [0, 0], atol=1e-6)
  # Samples: x_0 = a0 x0 + b0 x1 and x_1 = a1 x0 + b1 x1 for any noise z.
  k0, k1, kz = jax.random.split(jax.random.PRNGKey(0), 3)
  x0, x1, z = (jax.random.normal(k, (8, 3)) for k in (k0, k1, kz))
  np.testing.assert_allclose(path.interpolate(0.0, x0, x1, z), a0 * x0 + b0 * x1, atol=1e-5)
  np.testing.assert_allclose(path.interpolate(1.0, x0, x1, z), a1 * x0 + b1 * x1, atol=1e-5)


@pytest.mark.parametrize("name,options", [(c[0], c[1]) for c in PATH_CASES])
def test_conditional_velocity_is_time_derivative(name, options):
  path = build_path(name, **options)
  k0, k1, kz = jax.random.split(jax.random.PRNGKey(1), 3)
  x0, x1, z = (jax.random.normal(k, (5, 2)) for k in (k0, k1, kz))
  h = 1e-3
  for t in INTERIOR:
    fd = (path.interpolate(t + h, x0, x1, z) - path.interpolate(t - h, x0, x1, z)) / (2 * h)
    np.testing.assert_allclose(path.conditional_velocity(t, x0, x1, z), fd, atol=2e-2,
                               err_msg=f"{name} at t={t}")
  # Batched times broadcast per example.
  t = jnp.linspace(0.1, 0.9, 5)
  expected = jnp.stack([path.conditional_velocity(t[i], x0[i:i + 1], x1[i:i + 1],
                                                  z[i:i + 1])[0] for i in range(5)])
  np.testing.assert_allclose(path.conditional_velocity(t, x0, x1, z), expected, atol=1e-5)


@pytest.mark.parametrize("name", BRIDGE_GAMMAS + ["constant"])
def test_gamma_closed_forms(name):
  gam = build_gamma(name)
  ts = INTERIOR
  h = 1e-3
  fd = (gam.gamma(ts + h) - gam.gamma(ts - h)) / (2 * h)
  np.testing.assert_allclose(gam.dgamma(ts), fd, rtol=2e-2, atol=2e-3)
  np.testing.assert_allclose(gam.gamma_sq(ts), gam.gamma(ts) ** 2, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(gam.gamma_dgamma(ts), gam.gamma(ts) * gam.dgamma(ts),
                             rtol=1e-4, atol=1e-6)
  ends = jnp.array([0.0, 1.0])
  assert np.all(np.isfinite(gam.gamma_dgamma(ends)))
  assert np.all(np.isfinite(gam.dgamma(ends)))
  if name != "constant":
    np.testing.assert_allclose(gam.gamma(ends), 0.0, atol=1e-6)
    assert float(gam.gamma(jnp.float32(0.5))) > 0 or name == "zero"


def test_sqrt_gamma_product_is_finite_where_derivative_is_not():
  gam = build_gamma("sqrt", scale=2.0)   # gamma = sqrt(4 t (1 - t)), c = 4.
  np.testing.assert_allclose(gam.gamma_dgamma(jnp.array([0.0, 0.5, 1.0])), [2.0, 0.0, -2.0],
                             atol=1e-6)
  path = build_path("linear", gamma="sqrt", gamma_scale=2.0)
  np.testing.assert_allclose(path.gamma_gamma_derivative(0.0), 2.0, atol=1e-6)
  # Training at exactly t = 0 does not explode (gamma' is reported as 0 there).
  x = jnp.ones((2, 2))
  assert np.all(np.isfinite(path.conditional_velocity(0.0, x, x, x)))


def test_all_gammas_registered():
  assert set(BRIDGE_GAMMAS + ["constant"]) <= set(GAMMAS.names())
  with pytest.raises(KeyError, match="valid names"):
    build_gamma("cubic")


def test_encoder_decoder_is_pure_noise_at_half():
  path = build_path("encoder_decoder")
  a, b, g = path.coefficients(0.5)
  np.testing.assert_allclose([a, b, g], [0, 0, 1], atol=1e-6)


def test_trigonometric_keeps_unit_norm_with_noise():
  path = build_path("trigonometric", gamma="sqrt")
  a, b, g = path.coefficients(INTERIOR)
  np.testing.assert_allclose(a ** 2 + b ** 2 + g ** 2, 1.0, atol=1e-5)


def test_custom_interpolant_uses_jvp_derivatives():
  path = custom_interpolant(lambda t: jnp.cos(0.5 * math.pi * t) ** 2,
                            lambda t: jnp.sin(0.5 * math.pi * t) ** 2, gamma="quadratic",
                            gamma_scale=0.5)
  t = jnp.float32(0.3)
  da, db, dg = path.coefficient_derivatives(t)
  s = math.pi * math.sin(math.pi * 0.3) / 2
  np.testing.assert_allclose([da, db, dg], [-s, s, 0.5 * (1 - 0.6)], rtol=1e-5)
  assert path.name == "custom"


def test_lipman_velocity_matches_torchcfm_formula():
  path = build_path("lipman", sigma_min=0.1)
  k0, k1 = jax.random.split(jax.random.PRNGKey(2))
  x0, x1 = jax.random.normal(k0, (4, 2)), jax.random.normal(k1, (4, 2))
  t = jnp.full((4,), 0.4)
  xt = path.interpolate(t, x0, x1)
  # (x1 - (1 - sigma_min) x_t) / (1 - (1 - sigma_min) t): Lipman et al., eq. 21.
  expected = (x1 - 0.9 * xt) / (1 - 0.9 * 0.4)
  np.testing.assert_allclose(path.conditional_velocity(t, x0, x1), expected, atol=1e-5)
