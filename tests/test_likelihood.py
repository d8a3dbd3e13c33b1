"""Probability-flow likelihoods: exact GMM log-density, Hutchinson within its standard
error, a non-Gaussian source, jit end to end, and bits/dim."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import GaussianMixture, MixtureOracle, mixture_oracle

from diffjax.likelihood import bits_per_dim, log_likelihood, make_log_likelihood
from diffjax.paths import build_path

MIX = GaussianMixture(jnp.array([0.4, 0.6]), jnp.array([[-1.5, 0.0], [1.5, 0.5]]),
                      jnp.array([[[0.5, 0.1], [0.1, 0.4]], [[0.3, 0.0], [0.0, 0.6]]]))


@pytest.mark.parametrize("path_name,solver", [("vp", "dopri5"), ("rectified_flow", "heun")])
def test_gmm_log_likelihood_matches_exact_log_density(path_name, solver):
  """|ODE log-likelihood - exact log rho_1| < 0.01 nats per point (float32, rtol 1e-5 or
  Heun with 200 steps)."""
  path = build_path(path_name)
  fields = mixture_oracle(path, MIX).fields()
  source = lambda x: mixture_oracle(path, MIX).marginal(0.0).log_prob(x)
  fn = make_log_likelihood(fields.velocity, source, solver=solver, num_steps=200,
                           rtol=1e-5, atol=1e-5)
  x = mixture_oracle(path, MIX).marginal(1.0).sample(jax.random.PRNGKey(0), 64)
  log_p, _, nfe = fn(x)
  exact = mixture_oracle(path, MIX).marginal(1.0).log_prob(x)
  np.testing.assert_allclose(log_p, exact, atol=1e-2)
  assert int(nfe) > 0


def test_hutchinson_agrees_with_exact_divergence_within_standard_error():
  path = build_path("vp")
  fields = mixture_oracle(path, MIX).fields()
  x = mixture_oracle(path, MIX).marginal(1.0).sample(jax.random.PRNGKey(1), 4)
  exact, _, _ = jax.jit(lambda x: log_likelihood(
      fields.velocity, x, source_log_prob=path.source_log_prob, num_steps=50))(x)
  repeats = 256
  xs = jnp.repeat(x, repeats, axis=0)
  for probe in ("rademacher", "gaussian"):
    estimate, _, _ = jax.jit(lambda x, k: log_likelihood(
        fields.velocity, x, source_log_prob=path.source_log_prob, key=k, num_steps=50,
        divergence="hutchinson", probe=probe))(xs, jax.random.PRNGKey(2))
    estimate = np.asarray(estimate).reshape(4, repeats)
    se = estimate.std(1) / math.sqrt(repeats)
    assert np.all(np.abs(estimate.mean(1) - np.asarray(exact)) < 4 * se + 1e-3), probe
    assert np.all(estimate.std(1) > 0)     # it is an estimate, not the exact value


def test_linear_flow_from_a_non_gaussian_source():
  """v(x, t) = A x maps x0 to x1 = e^A x0, so log p1(x) = log p0(e^{-A} x) - tr A for any
  source density p0 (here a product of logistic densities)."""
  a = jnp.array([[0.3, -0.4], [0.2, -0.1]])
  velocity = lambda x, t: x @ a.T
  logistic = lambda x: jnp.sum(-x - 2 * jax.nn.softplus(-x), -1)
  x = jax.random.normal(jax.random.PRNGKey(3), (16, 2))
  log_p, x_source, _ = jax.jit(lambda x: log_likelihood(
      velocity, x, source_log_prob=logistic, solver="rk4", num_steps=50))(x)
  inv = jax.scipy.linalg.expm(-a)
  np.testing.assert_allclose(x_source, x @ inv.T, atol=1e-5)
  np.testing.assert_allclose(log_p, logistic(x @ inv.T) - jnp.trace(a), atol=1e-4)


def test_bits_per_dim():
  """A model uniform on [-1, 1]^D gives exactly 8 bits/dim on 8-bit data; a Gaussian model
  evaluated through the ODE matches the same formula with the exact density."""
  data = jax.random.randint(jax.random.PRNGKey(4), (32, 3), 0, 256)
  uniform = lambda x: jnp.full((x.shape[0],), -3 * math.log(2.0))
  np.testing.assert_allclose(bits_per_dim(uniform, jax.random.PRNGKey(5), data), 8.0,
                             rtol=1e-6)
  path = build_path("rectified_flow")
  gauss = GaussianMixture(jnp.ones((1,)), jnp.zeros((1, 3)), 0.36 * jnp.eye(3)[None])
  fields = mixture_oracle(path, gauss).fields()
  ode_log_p = make_log_likelihood(fields.velocity, path.source_log_prob, solver="heun",
                                  num_steps=100)
  bpd_ode = bits_per_dim(lambda x: ode_log_p(x)[0], jax.random.PRNGKey(6), data)
  bpd_exact = bits_per_dim(gauss.log_prob,
                           jax.random.PRNGKey(6), data)
  np.testing.assert_allclose(bpd_ode, bpd_exact, atol=1e-3)


def test_hutchinson_needs_a_key_and_names_are_checked():
  with pytest.raises(ValueError, match="needs a PRNG key"):
    log_likelihood(lambda x, t: x, jnp.ones((2, 2)), source_log_prob=lambda x: x[:, 0],
                   divergence="hutchinson")
  with pytest.raises(KeyError, match="exact.*hutchinson"):
    log_likelihood(lambda x, t: x, jnp.ones((2, 2)), source_log_prob=lambda x: x[:, 0],
                   divergence="skilling")


@pytest.mark.parametrize("name,options", [
    ("linear", {"gamma": "zero"}),
    ("trigonometric", {"gamma": "sqrt", "gamma_scale": 0.5}),
])
def test_interpolant_log_likelihood_matches_exact_log_density(name, options):
  """Between two mixtures (a non-Gaussian source), the ODE log-likelihood under the exact
  interpolant velocity b (the probability flow of the stochastic interpolant when gamma > 0)
  from log rho_0 equals the exact log rho_1 within 0.01 nats per point."""
  rho0 = GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[0.0, -1.0], [0.0, 1.0]]),
                         jnp.array([[[0.3, 0.0], [0.0, 0.2]], [[0.2, 0.05], [0.05, 0.3]]]))
  oracle = MixtureOracle(build_path(name, **options), rho0, MIX)
  fn = make_log_likelihood(oracle.velocity, rho0.log_prob, solver="dopri5", rtol=1e-5,
                           atol=1e-5)
  x = MIX.sample(jax.random.PRNGKey(4), 64)
  log_p, x_source, _ = fn(x)
  np.testing.assert_allclose(log_p, MIX.log_prob(x), atol=1e-2)
  assert np.all(np.isfinite(np.asarray(x_source)))
