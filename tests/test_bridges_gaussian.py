"""Closed-form Gaussian Schrödinger bridges against independent computations.

Independent checks: (1) the first-order optimality condition of the Gaussian entropic-OT
problem, solved in float64 NumPy; (2) POT's entropic OT plan between large samples;
(3) the Monge map characterised by T A T = B, T symmetric positive definite; (4)
Euler–Maruyama simulation of the closed-form drifts; (5) the covariance ODE of a linear
Markov drift; (6) the scalar Ornstein–Uhlenbeck transition in closed form.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from diffjax.bridges import gaussian, reference
from diffjax.bridges.linalg import expm
from diffjax.bridges.simulate import simulate_backward, simulate_forward
from diffjax.couplings import sinkhorn_log_plan
from diffjax.errors import ConfigError


def random_gaussian(seed, dim, scale=1.0):
  rng = np.random.default_rng(seed)
  m = rng.normal(size=(dim, dim))
  cov = scale * (m @ m.T / dim + 0.3 * np.eye(dim))
  return rng.normal(size=dim).astype(np.float32), cov.astype(np.float32)


def pair(dim, seed=0):
  (a, cov_a), (b, cov_b) = random_gaussian(seed, dim), random_gaussian(seed + 100, dim, 2.0)
  return a, cov_a, b, cov_b


@pytest.mark.parametrize("dim,sigma", [(2, 0.3), (2, 1.5), (8, 0.7)])
def test_brownian_coupling_is_the_entropic_ot_optimum(dim, sigma):
  # Among Gaussian couplings with cross-covariance C, E|x0-x1|^2 - 2 sigma^2 H is minimal
  # where C = A (B - C^T A^-1 C) / sigma^2 (the stationarity condition; derivation in the
  # test module of the issue). Checked in float64; the float32 closed form within 2e-4.
  a, cov_a, b, cov_b = pair(dim)
  bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(sigma))
  c = np.asarray(bridge.cross_covariance, np.float64)
  A, B = cov_a.astype(np.float64), cov_b.astype(np.float64)
  schur = B - c.T @ np.linalg.solve(A, c)
  residual = c - A @ schur / sigma ** 2
  assert np.abs(residual).max() < 2e-4 * np.abs(c).max() / min(sigma ** 2, 1.0)
  assert np.linalg.eigvalsh(np.asarray(bridge.coupling_covariance(), np.float64)).min() > 0


def entropic_plan_cross_covariance(x, y, cost_x, cost_y, epsilon):
  """Cross-covariance of ott-jax's entropic plan between uniform samples x and y, for the
  cost |cost_x - cost_y|^2 (cost_x, cost_y: transformed samples)."""
  log_plan = jax.jit(sinkhorn_log_plan, static_argnums=(2, 3, 4))(
      jnp.asarray(cost_x, jnp.float32), jnp.asarray(cost_y, jnp.float32), epsilon, 1e-4,
      5000)
  plan = np.exp(np.asarray(log_plan, np.float64))
  plan /= plan.sum()
  return (x - x.mean(0)).T @ plan @ (y - y.mean(0))


def test_brownian_coupling_matches_entropic_ot_on_samples():
  # 2D, sigma = 0.7 (epsilon = 2 sigma^2 = 0.98); 1000 samples per side. The closed form
  # is evaluated at the samples' own moments, so the sampling error of the covariances
  # (~0.1 here) cancels; what remains (the samples are not exactly Gaussian, Sinkhorn's
  # threshold) measured 0.004-0.008 over 3 seeds; tolerance 0.025 on entries of 0.3-2.7.
  a, cov_a, b, cov_b = pair(2, seed=3)
  sigma = 0.7
  rng = np.random.default_rng(0)
  x = rng.multivariate_normal(a, cov_a, 1000)
  y = rng.multivariate_normal(b, cov_b, 1000)
  bridge = gaussian.gaussian_bridge(x.mean(0), np.cov(x.T, bias=True), y.mean(0),
                                    np.cov(y.T, bias=True), reference.brownian(sigma))
  cross = entropic_plan_cross_covariance(x, y, x, y, 2 * sigma ** 2)
  np.testing.assert_allclose(cross, bridge.cross_covariance, atol=0.025)


def test_sigma_to_zero_tends_to_the_monge_map():
  # The OT map between N(a, A) and N(b, B) is x -> b + T (x - a) with T the SPD solution
  # of T A T = B (checked); C(sigma) = A T + O(sigma^2).
  a, cov_a, b, cov_b = pair(4, seed=5)
  A, B = cov_a.astype(np.float64), cov_b.astype(np.float64)
  root = np.real(scipy.linalg.sqrtm(A))
  inv_root = np.linalg.inv(root)
  monge = inv_root @ np.real(scipy.linalg.sqrtm(root @ B @ root)) @ inv_root
  np.testing.assert_allclose(monge @ A @ monge, B, atol=1e-9)
  assert np.linalg.eigvalsh(monge).min() > 0
  errors = []
  for sigma in (0.3, 0.1, 0.03):
    c = gaussian.gaussian_bridge(a, cov_a, b, cov_b,
                                 reference.brownian(sigma)).cross_covariance
    errors.append(np.abs(np.asarray(c) - A @ monge).max())
  assert errors[2] < 2e-3 and errors[0] > errors[1] > errors[2]
  # Large sigma: the coupling tends to the independent one.
  c = gaussian.gaussian_bridge(a, cov_a, b, cov_b,
                               reference.brownian(30.0)).cross_covariance
  assert np.abs(np.asarray(c)).max() < 0.01


def ou_reference(dim, rate=1.3, sigma=0.8):
  mean = np.linspace(-1, 1, dim).astype(np.float32)
  return reference.reference_process("ornstein_uhlenbeck", sigma,
                                     {"rate": rate, "mean": mean}, dim), mean


def test_endpoint_marginals_are_the_given_gaussians():
  dim = 3   # The dimension of the other tests: their compiled bridges are reused.
  a, cov_a, b, cov_b = pair(dim, seed=7)
  for ref in (reference.brownian(0.6), ou_reference(dim)[0]):
    bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, ref)
    for t, (mean, cov) in ((0.0, (a, cov_a)), (1.0, (b, cov_b))):
      m, s = bridge.marginal(t)
      np.testing.assert_allclose(m, mean, atol=2e-5)
      np.testing.assert_allclose(s, cov, atol=2e-4 * np.abs(cov).max())


def test_ou_transition_matches_the_scalar_closed_form():
  ref, mean = ou_reference(3, rate=0.9, sigma=0.5)
  matrix, offset = ref.linear_coefficients()
  phi, shift, q = gaussian.linear_transition(matrix, offset, ref.sigma, 0.7)
  decay = np.exp(-0.9 * 0.7)
  np.testing.assert_allclose(phi, decay * np.eye(3), rtol=1e-5)
  np.testing.assert_allclose(shift, (1 - decay) * mean, atol=1e-6)
  np.testing.assert_allclose(q, 0.25 * (1 - decay ** 2) / (2 * 0.9) * np.eye(3), rtol=1e-4)


def test_linear_reference_with_zero_drift_equals_brownian():
  a, cov_a, b, cov_b = pair(3, seed=2)
  zero = reference.reference_process("linear", 0.6, {"matrix": np.zeros((3, 3)),
                                                     "offset": np.zeros(3)}, 3)
  lin = gaussian.gaussian_bridge(a, cov_a, b, cov_b, zero)
  bro = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(0.6))
  np.testing.assert_allclose(lin.cross_covariance, bro.cross_covariance, atol=1e-5)
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
  np.testing.assert_allclose(lin.marginal(0.3)[1], bro.marginal(0.3)[1], atol=1e-5)
  np.testing.assert_allclose(lin.forward_drift(x, 0.3), bro.forward_drift(x, 0.3),
                             atol=2e-4)


def test_ou_coupling_matches_entropic_ot_with_the_transition_cost():
  # Static SB under the OU reference = entropic OT with cost -log p(x1 | x0) =
  # |x1 - e^-r x0 - (1 - e^-r) m|^2 / (2 q), epsilon = 1 (scalar transition, closed form);
  # as ott-jax's cost is |u - v|^2, scale both sides by 1 / sqrt(2 q).
  dim, rate, sigma = 2, 2.5, 0.8
  # Closed form at the samples' moments, as above; tolerance 0.025.
  ref, mean = ou_reference(dim, rate, sigma)
  a, cov_a, b, cov_b = pair(dim, seed=11)
  decay = np.exp(-rate)
  scale = 1 / np.sqrt(2 * sigma ** 2 * (1 - decay ** 2) / (2 * rate))
  rng = np.random.default_rng(1)
  x = rng.multivariate_normal(a, cov_a, 1000)
  y = rng.multivariate_normal(b, cov_b, 1000)
  bridge = gaussian.gaussian_bridge(x.mean(0), np.cov(x.T, bias=True), y.mean(0),
                                    np.cov(y.T, bias=True), ref)
  cross = entropic_plan_cross_covariance(x, y, scale * (decay * x + (1 - decay) * mean),
                                         scale * y, 1.0)
  np.testing.assert_allclose(cross, bridge.cross_covariance, atol=0.025)
  # And it differs from the Brownian bridge with the same sigma (the test can fail).
  brownian = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(sigma))
  assert np.abs(np.asarray(brownian.cross_covariance - cross)).max() > 0.2


def test_brownian_drift_solves_the_covariance_equation():
  # A linear Markov drift f = mu' + M (x - mu) transports N(mu_t, Sigma_t) iff
  # mu' = f(mu) and Sigma' = M Sigma + Sigma M^T + sigma^2 I; M from autodiff of f.
  a, cov_a, b, cov_b = pair(3, seed=4)
  sigma = 0.9
  bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(sigma))
  for t in (0.1, 0.5, 0.95):
    mean, cov = bridge.marginal(t)
    jac = jax.jacfwd(lambda x: bridge.forward_drift(x[None], t)[0])(mean)
    dmean = jax.jacfwd(lambda s: bridge.marginal(s)[0])(jnp.float32(t))
    dcov = jax.jacfwd(lambda s: bridge.marginal(s)[1])(jnp.float32(t))
    np.testing.assert_allclose(bridge.forward_drift(mean[None], t)[0], dmean, atol=1e-4)
    np.testing.assert_allclose(jac @ cov + cov @ jac.T + sigma ** 2 * np.eye(3), dcov,
                               atol=2e-4 * np.abs(dcov).max() + 1e-5)


def assert_moments_close(x, y, cross, var_x, var_y, n_se=5.0, bias=0.02):
  """|sample Cov(x, y) - cross| < n_se standard errors + bias, entrywise; var_x, var_y the
  population covariances of x and y (se_ij^2 = (var_x_ii var_y_jj + cross_ij^2) / n)."""
  n = x.shape[0]
  sample = (x - x.mean(0)).T @ (y - y.mean(0)) / (n - 1)
  se = np.sqrt((np.outer(np.diag(var_x), np.diag(var_y)) + np.asarray(cross) ** 2) / n)
  excess = np.abs(sample - cross) - n_se * se - bias
  assert excess.max() < 0, (sample, cross, se)


@pytest.mark.parametrize("kind", ["brownian", "ou"])
def test_simulating_the_drifts_reproduces_the_bridge(kind):
  # 4000 paths, 100 Euler–Maruyama steps forward (and backward from N(b, B)): the moments
  # at t = 0.5 and 1 and the cross-covariance are within 5 Monte-Carlo standard errors
  # plus 0.02 for the Euler bias (measured below 0.02 at 20000 paths).
  dim = 2
  a, cov_a, b, cov_b = pair(dim, seed=9)
  ref = reference.brownian(0.8) if kind == "brownian" else ou_reference(dim)[0]
  bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, ref)
  ts = jnp.linspace(0.0, 1.0, 101)

  rng = np.random.default_rng(0)
  x0 = rng.multivariate_normal(a, cov_a, 4000).astype(np.float32)
  x1 = rng.multivariate_normal(b, cov_b, 4000).astype(np.float32)

  @jax.jit
  def run(x0, x1, key):
    forward = simulate_forward(bridge.forward_drift, x0, ts, jax.random.fold_in(key, 1),
                               bridge.sigma)
    backward = simulate_backward(bridge.backward_drift, x1, ts, jax.random.fold_in(key, 3),
                                 bridge.sigma)
    return forward.trajectory[50], forward.x, backward.x

  half, x1, back = map(np.asarray, run(x0, x1, jax.random.PRNGKey(0)))
  mean_half, cov_half = map(np.asarray, bridge.marginal(0.5))
  c = np.asarray(bridge.cross_covariance)
  assert np.abs(x1.mean(0) - b).max() < 5 * np.sqrt(np.diag(cov_b).max() / 4000) + 0.02
  assert np.abs(half.mean(0) - mean_half).max() < 5 * np.sqrt(cov_half.max() / 4000) + 0.02
  assert_moments_close(x1, x1, cov_b, cov_b, cov_b)
  assert_moments_close(half, half, cov_half, cov_half, cov_half)
  assert_moments_close(x0, x1, c, cov_a, cov_b)
  assert np.abs(back.mean(0) - a).max() < 5 * np.sqrt(np.diag(cov_a).max() / 4000) + 0.02
  assert_moments_close(back, back, cov_a, cov_a, cov_a)


def test_bad_inputs_are_refused():
  a, cov_a, b, cov_b = pair(2)
  with pytest.raises(ConfigError, match="sigma must be a positive number.*-1"):
    reference.brownian(-1.0)
  with pytest.raises(ConfigError, match="sigma must be a positive number.*0"):
    reference.brownian(0.0)
  with pytest.raises(ConfigError, match="dimensions 2 and 3"):
    gaussian.gaussian_bridge(a, cov_a, np.zeros(3), np.eye(3), reference.brownian(1.0))
  with pytest.raises(ConfigError, match="not linear"):
    lv = reference.reference_process("lotka_volterra", 0.1, dim=2)
    gaussian.gaussian_bridge(a, cov_a, b, cov_b, lv)


def test_expm_matches_scipy():
  rng = np.random.default_rng(0)
  for m in (np.zeros((3, 3)), 3 * rng.normal(size=(4, 4)), 0.01 * rng.normal(size=(2, 2)),
            np.array([[0.0, 5.0], [-5.0, 0.0]]), -20 * np.eye(2)):
    exact = scipy.linalg.expm(m)
    got = np.asarray(jax.jit(expm)(jnp.asarray(m, jnp.float32)))
    assert np.abs(got - exact).max() < 1e-5 * np.abs(exact).max()
