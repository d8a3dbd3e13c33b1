"""Intrinsic dimension from the score's Jacobian, and the conservativity diagnostic.

"On gauge freedom, conservativity and intrinsic dimensionality estimation in diffusion
models" (Horvat & Pfister, ICLR 2024): near data on a d-dimensional manifold in R^D and at
small noise, the score of x_t = alpha x1 + sigma eps points back to the manifold, so its
Jacobian J = d s / d x has D - d singular values of order 1 / sigma^2 (the normal
directions) and d that stay O(1) (the tangent ones): the number of vanishing singular
values of sigma^2 J estimates d. For a Gaussian with covariance C along the data,
-sigma^2 J = sigma^2 (alpha^2 C + sigma^2 I)^{-1} has eigenvalues sigma^2 / (alpha^2 c_i +
sigma^2): 1 in the normal directions (c_i = 0), -> 0 in the tangent ones.

Criterion (stated once, used everywhere): a singular value of sigma^2 J is "vanishing"
when it is below `threshold` = 1/2, i.e. where the data spread alpha^2 c_i exceeds the
noise sigma^2; the estimate of d at a point is the number of vanishing singular values
(`estimate_dimension`). `largest_gap_dimension` gives the scale-free alternative (the
largest ratio between consecutive singular values) for comparison.

Conservativity (same paper, Sec. 3): a true score is a gradient, so J is symmetric; a
network that outputs a vector field need not be. `jacobian_asymmetry` =
||J - J^T||_F / ||J||_F per point (0 for any gradient field).

  jac = score_jacobians(score_fn, x)                  # (B, D, D); x (B, ...) flattened
  d = estimate_dimension(jac, sigma)                 # (B,) ints
  asym = jacobian_asymmetry(jac)                     # (B,)
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError


def score_jacobians(score_fn, x):
  """The Jacobian of score_fn (B, ...) -> (B, ...) at each of the points x (B, ...), as
  (B, D, D) with D the flattened size, by forward mode (D JVPs per point)."""
  shape = x.shape[1:]
  flat = x.reshape(x.shape[0], -1)

  def single(v):
    return score_fn(v.reshape((1,) + shape)).reshape(-1)

  return jax.vmap(jax.jacfwd(single))(flat)


def singular_values(jacobians):
  """(B, D, D) -> (B, D) singular values, descending."""
  return jnp.linalg.svd(jacobians, compute_uv=False)


def estimate_dimension(jacobians, sigma, threshold=0.5):
  """(B, D, D) score Jacobians at noise level sigma -> (B,) the number of singular values
  of sigma^2 J below `threshold` (the module's criterion)."""
  if not 0.0 < threshold < 1.0:
    raise ConfigError(f"The vanishing threshold must lie in (0, 1); got {threshold}.")
  values = (sigma ** 2) * singular_values(jacobians)
  return jnp.sum(values < threshold, axis=-1)


def largest_gap_dimension(jacobians):
  """(B, D, D) -> (B,) D - k, k the number of singular values above the largest ratio
  s_i / s_{i+1} between consecutive ones (the largest gap in log singular values)."""
  values = singular_values(jacobians)
  logs = jnp.log(jnp.maximum(values, 1e-30))
  k = jnp.argmax(logs[:, :-1] - logs[:, 1:], axis=-1) + 1
  return values.shape[-1] - k


def jacobian_asymmetry(jacobians):
  """(B, D, D) -> (B,) ||J - J^T||_F / ||J||_F: 0 for a conservative field (a gradient),
  up to sqrt(2) for an antisymmetric one."""
  skew = jacobians - jnp.swapaxes(jacobians, -1, -2)
  norm = lambda a: jnp.sqrt(jnp.sum(a ** 2, axis=(-2, -1)))
  return norm(skew) / jnp.maximum(norm(jacobians), 1e-30)


def two_nn_dimension(points, max_points=2000):
  """The TwoNN estimate of the intrinsic dimension of a point cloud (N, D) (Facco et al.,
  "Estimating the intrinsic dimension of datasets by a minimal neighborhood information",
  Sci. Rep. 2017, eq. 3 as the maximum-likelihood form): with mu_i = r2 / r1, the ratio of
  each point's second- to first-nearest-neighbour distance, d = N / sum log mu_i. A
  reference for data whose true dimension is unknown (the digits)."""
  x = np.asarray(points, np.float64).reshape(len(points), -1)[:max_points]
  # float64 differences: on a dense curve neighbours are ~1e-3 apart, which the float32
  # expansion |x|^2 + |y|^2 - 2 x.y would drown in rounding.
  dist2 = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
  np.fill_diagonal(dist2, np.inf)
  nearest = np.sort(dist2, axis=1)[:, :2]
  keep = nearest[:, 0] > 0                                # duplicates have r1 = 0
  log_mu = 0.5 * np.log(nearest[keep, 1] / nearest[keep, 0])
  return float(keep.sum() / log_mu.sum())
