"""The regression targets of IPF (mean matching) and IMF (bridge matching) against the
closed-form Gaussian bridge: their conditional expectations, estimated by affine least
squares on simulated data, are the exact drifts. No network is trained here."""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.bridges import bridge_matching, gaussian, mean_matching, reference
from diffjax.bridges.ipf import dsb_time_grid


def gaussian_pair(dim=2, seed=0):
  rng = np.random.default_rng(seed)
  covs = []
  for scale in (1.0, 2.0):
    m = rng.normal(size=(dim, dim))
    covs.append((scale * (m @ m.T / dim + 0.3 * np.eye(dim))).astype(np.float32))
  return (rng.normal(size=dim).astype(np.float32), covs[0],
          rng.normal(size=dim).astype(np.float32), covs[1])


def affine_fit(x, y):
  """Least squares y ~ x W^T + c: returns (W (D, D), c (D,))."""
  features = np.concatenate([x, np.ones((x.shape[0], 1))], 1).astype(np.float64)
  coef, *_ = np.linalg.lstsq(features, y.astype(np.float64), rcond=None)
  return coef[:-1].T, coef[-1]


def affine_of(fn, dim):
  """(W, c) of an affine function fn(x) -> (B, D) by evaluating it at 0 and the basis."""
  points = jnp.concatenate([jnp.zeros((1, dim)), jnp.eye(dim)], 0)
  values = np.asarray(fn(points), np.float64)
  return (values[1:] - values[:1]).T, values[0]


def test_first_half_iteration_targets_are_the_reference_score():
  # Brownian paths from N(a, A): the mean-matching target's conditional expectation at
  # step j + 1 is sigma^2 grad log N(a, A + sigma^2 t_{j+1} I) exactly (Gaussian chain).
  # 8000 paths; the least-squares slope has standard error ~ sqrt(sigma^2 / h / n) / std(x)
  # ~ 0.04 (h = 0.1); tolerance 0.2 on slopes of size ~0.3-1.
  a, cov_a, _, _ = gaussian_pair(seed=1)
  sigma = 0.8
  ts = jnp.linspace(0.0, 1.0, 11)
  x0 = np.random.default_rng(0).multivariate_normal(a, cov_a, 8000).astype(np.float32)
  cache = jax.jit(lambda x, k: mean_matching.simulate_cache(
      lambda y, t: jnp.zeros_like(y), x, ts, k, sigma, "forward"))(
          x0, jax.random.PRNGKey(0))
  assert cache.x.shape == (10, 8000, 2) and cache.target.shape == (10, 8000, 2)
  np.testing.assert_allclose(cache.t, ts[1:])
  for j in (0, 4, 9):
    slope, intercept = affine_fit(np.asarray(cache.x[j]), np.asarray(cache.target[j]))
    cov_t = cov_a + sigma ** 2 * float(ts[j + 1]) * np.eye(2)
    exact = -sigma ** 2 * np.linalg.inv(cov_t)
    np.testing.assert_allclose(slope, exact, atol=0.2)
    np.testing.assert_allclose(intercept, -exact @ a, atol=0.2)


def test_mean_matching_on_the_bridge_recovers_its_other_drift():
  # Paths of the exact Gaussian bridge, forward (then backward): targets regress onto the
  # exact backward (forward) drift at t_{j+1}, up to the O(h) Euler error (h = 1/40) and
  # Monte-Carlo error (~0.05 with 8000 paths, h = 1/40). Tolerance 0.25 on coefficients of
  # size up to ~3.
  a, cov_a, b, cov_b = gaussian_pair(seed=2)
  bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(1.0))
  ts = jnp.linspace(0.0, 1.0, 41)
  rng = np.random.default_rng(1)
  x0 = rng.multivariate_normal(a, cov_a, 8000).astype(np.float32)
  x1 = rng.multivariate_normal(b, cov_b, 8000).astype(np.float32)
  run = jax.jit(lambda x0, x1, k: (
      mean_matching.simulate_cache(bridge.forward_drift, x0, ts, k, bridge.sigma,
                                   "forward"),
      mean_matching.simulate_cache(bridge.backward_drift, x1, ts, jax.random.fold_in(k, 1),
                         bridge.sigma, "backward")))
  forward_paths, backward_paths = run(x0, x1, jax.random.PRNGKey(3))
  for j in (5, 20, 35):
    t = float(forward_paths.t[j])
    slope, intercept = affine_fit(np.asarray(forward_paths.x[j]),
                                  np.asarray(forward_paths.target[j]))
    exact_w, exact_c = affine_of(lambda x: bridge.backward_drift(x, t), 2)
    np.testing.assert_allclose(slope, exact_w, atol=0.25)
    np.testing.assert_allclose(intercept, exact_c, atol=0.25)
    t = float(backward_paths.t[j])
    slope, intercept = affine_fit(np.asarray(backward_paths.x[j]),
                                  np.asarray(backward_paths.target[j]))
    exact_w, exact_c = affine_of(lambda x: bridge.forward_drift(x, t), 2)
    np.testing.assert_allclose(slope, exact_w, atol=0.25)
    np.testing.assert_allclose(intercept, exact_c, atol=0.25)


def test_bridge_matching_on_the_static_coupling_is_the_bridge_drift():
  # The Markovian projection of the Brownian-bridge mixture over the Schrödinger coupling
  # is the Schrödinger bridge itself: at any t the targets regress onto its drifts (no
  # discretisation). 40000 pairs; MC error of the slopes ~0.02-0.05; tolerance 0.12.
  a, cov_a, b, cov_b = gaussian_pair(seed=3)
  sigma = 0.9
  bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(sigma))
  x0, x1 = bridge.sample_coupling(jax.random.PRNGKey(0), 40000)
  path = bridge_matching.brownian_bridge(sigma)
  for t in (0.25, 0.5, 0.75):
    z = jax.random.normal(jax.random.PRNGKey(1), x0.shape)
    xt = path.interpolate(jnp.full(40000, t), x0, x1, z)
    for direction, exact in (("forward", bridge.forward_drift),
                             ("backward", bridge.backward_drift)):
      target = bridge_matching.bridge_matching_target(jnp.full(40000, t), x0, x1, z, sigma,
                                                      direction)
      slope, intercept = affine_fit(np.asarray(xt), np.asarray(target))
      exact_w, exact_c = affine_of(lambda x: exact(x, t), 2)
      np.testing.assert_allclose(slope, exact_w, atol=0.12)
      np.testing.assert_allclose(intercept, exact_c, atol=0.12)


def test_brownian_bridge_is_the_linear_path_with_the_sqrt_gamma():
  # The path's sampling and drift targets equal the Brownian bridge's own formulas:
  # x_t = (1 - t) x0 + t x1 + sigma sqrt(t (1 - t)) z, forward (x1 - x_t) / (1 - t),
  # backward (x0 - x_t) / t; at the ends (gamma = 0) x1 - x0 forward at t = 0 and x0 - x1
  # backward at t = 1. Float32 rounding differs (sqrt(sigma^2 t (1 - t)) vs
  # sigma sqrt(t (1 - t)); the targets' z terms combine gamma' z and -z / gamma).
  sigma = 0.7
  k_pairs, k_t, k_z = jax.random.split(jax.random.PRNGKey(0), 3)
  x0, x1 = jax.random.normal(k_pairs, (2, 512, 3))
  t = jnp.concatenate([jnp.array([1e-6, 1e-3, 0.5, 0.999]),
                       jax.random.uniform(k_t, (508,), minval=1e-3, maxval=1 - 1e-3)])
  z = jax.random.normal(k_z, x0.shape)
  tc = t[:, None]
  old = (1 - tc) * x0 + tc * x1 + sigma * jnp.sqrt(tc * (1 - tc)) * z
  xt = bridge_matching.brownian_bridge(sigma).interpolate(t, x0, x1, z)
  np.testing.assert_allclose(xt, old, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(
      bridge_matching.brownian_bridge_sample(k_z, t, x0, x1, sigma), xt)
  forward = bridge_matching.bridge_matching_target(t, x0, x1, z, sigma, "forward")
  backward = bridge_matching.bridge_matching_target(t, x0, x1, z, sigma, "backward")
  np.testing.assert_allclose(forward, (x1 - old) / (1 - tc), rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(backward, (x0 - old) / tc, rtol=1e-4, atol=1e-3)
  ends = jnp.array([0.0, 1.0])
  targets = [bridge_matching.bridge_matching_target(ends, x0[:2], x1[:2], z[:2], sigma, d)
             for d in ("forward", "backward")]
  np.testing.assert_allclose(targets[0][0], (x1 - x0)[0], rtol=1e-6)
  np.testing.assert_allclose(targets[1][1], (x0 - x1)[1], rtol=1e-6)
  assert np.all(np.isfinite(np.asarray(targets)))


def test_losses_are_smallest_at_the_exact_drift():
  # Both losses are regressions: on the same minibatch, shifting the exact drift by 0.5 in
  # every coordinate raises the mean squared error by 0.25, up to the correlation of the
  # shift with the residual: Monte-Carlo (std ~0.01 for bridge matching, ~0.03 for mean
  # matching, whose targets have variance sigma^2 / h) and mean matching's O(h) bias
  # (measured 0.35 at h = 1/20).
  a, cov_a, b, cov_b = gaussian_pair(seed=4)
  bridge = gaussian.gaussian_bridge(a, cov_a, b, cov_b, reference.brownian(0.7))
  x0, x1 = bridge.sample_coupling(jax.random.PRNGKey(0), 8000)
  key = jax.random.PRNGKey(5)
  exact, _ = bridge_matching.bridge_matching_loss(bridge.forward_drift, key, x0, x1, 0.7,
                                                  "forward", t_margin=0.05,
                                                  weighting="uniform")
  shifted, _ = bridge_matching.bridge_matching_loss(
      lambda x, t: bridge.forward_drift(x, t) + 0.5, key, x0, x1, 0.7, "forward",
      t_margin=0.05, weighting="uniform")
  np.testing.assert_allclose(shifted - exact, 0.25, rtol=0.1)
  ts = jnp.linspace(0.0, 1.0, 21)
  cache = mean_matching.simulate_cache(bridge.forward_drift, x0, ts, key, 0.7, "forward")
  exact, _ = mean_matching.mean_matching_loss(bridge.backward_drift, cache, key, 8000)
  shifted, _ = mean_matching.mean_matching_loss(
      lambda x, t: bridge.backward_drift(x, t) + 0.5,
                                      cache, key, 8000)
  assert 0.15 < shifted - exact < 0.45
  x, t, target = mean_matching.cache_batch(cache, key, 8000)   # The loss's batch.
  np.testing.assert_allclose(exact, np.mean((np.asarray(bridge.backward_drift(x, t))
                                             - np.asarray(target)) ** 2), rtol=1e-5)


def test_dsb_time_grid_has_the_gamma_schedule():
  np.testing.assert_allclose(dsb_time_grid(4), [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-7)
  ts = np.asarray(dsb_time_grid(6, 0.1, 1.0), np.float64)
  steps = np.diff(ts)
  np.testing.assert_allclose(steps / steps[0], [1.0, 5.5, 10.0, 10.0, 5.5, 1.0], rtol=1e-5)
  assert ts[0] == 0.0 and ts[-1] == 1.0
