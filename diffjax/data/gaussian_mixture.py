"""Gaussian-mixture targets with exact log-density, score and samples.

A mixture p(x) = sum_k w_k N(x; mu_k, C_k) has the exact score
  grad log p(x) = sum_k r_k(x) C_k^{-1} (mu_k - x),  r_k(x) = w_k N(x; mu_k, C_k) / p(x),
so it is the closed-form target used to test samplers, objectives and likelihoods.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from diffjax.errors import ConfigError


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """A mixture of K full-covariance Gaussians in D dimensions.

  Attributes:
    weights: (K,) non-negative mixture weights summing to one.
    means: (K, D) component means.
    covariances: (K, D, D) symmetric positive-definite component covariances.
  """
  weights: jax.Array
  means: jax.Array
  covariances: jax.Array

  def __post_init__(self):
    fields = (self.weights, self.means, self.covariances)
    if not all(hasattr(f, "shape") for f in fields):
      return  # Placeholder leaves during pytree transformations.
    k, d = jnp.shape(self.means)
    if jnp.shape(self.weights) != (k,) or jnp.shape(self.covariances) != (k, d, d):
      raise ValueError(
          f"GaussianMixture needs weights (K,), means (K, D), covariances (K, D, D); got "
          f"{jnp.shape(self.weights)}, {jnp.shape(self.means)}, "
          f"{jnp.shape(self.covariances)}.")

  @property
  def dim(self) -> int:
    return self.means.shape[-1]

  def sample(self, key, num_samples):
    """Returns (num_samples, D) exact samples."""
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, jnp.log(self.weights), shape=(num_samples,))
    chol = jnp.linalg.cholesky(self.covariances)
    z = jax.random.normal(k_noise, (num_samples, self.dim))
    return self.means[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)

  def component_terms(self, x):
    """x (N, D) -> (log w_k + log N(x; mu_k, C_k) (N, K), C_k^{-1} (mu_k - x) (N, K, D))."""
    chol = jnp.linalg.cholesky(self.covariances)                           # (K, D, D)
    diff = self.means[None] - x[:, None, :]                                 # (N, K, D)
    batched = lambda m: jnp.broadcast_to(m[None], diff.shape + diff.shape[-1:])
    white = jax.scipy.linalg.solve_triangular(
        batched(chol), diff[..., None], lower=True)[..., 0]                 # (N, K, D)
    log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    log_norm = -0.5 * (self.dim * jnp.log(2 * jnp.pi) + log_det)
    log_comp = (jnp.log(self.weights) + log_norm)[None] - 0.5 * jnp.sum(white ** 2, -1)
    precision_diff = jax.scipy.linalg.solve_triangular(
        batched(jnp.swapaxes(chol, -1, -2)), white[..., None], lower=False)[..., 0]
    return log_comp, precision_diff

  def component_log_probs(self, x):
    """(N, D) -> (N, K): log w_k + log N(x; mu_k, C_k)."""
    return self.component_terms(x)[0]

  def log_prob(self, x):
    """(N, D) -> (N,) exact log-density."""
    return logsumexp(self.component_log_probs(x), axis=-1)

  def score(self, x):
    """(N, D) -> (N, D) exact score grad_x log p(x)."""
    log_comp, precision_diff = self.component_terms(x)
    return jnp.einsum("nk,nkd->nd", jax.nn.softmax(log_comp, axis=-1), precision_diff)


def isotropic_mixture(weights, means, std):
  """A mixture whose components all have covariance std^2 I."""
  means = jnp.asarray(means, jnp.float32)
  k, d = means.shape
  std = jnp.broadcast_to(jnp.asarray(std, jnp.float32), (k,))
  covs = (std ** 2)[:, None, None] * jnp.eye(d)[None]
  return GaussianMixture(jnp.asarray(weights, jnp.float32), means, covs)


def ring_mixture(num_modes=8, radius=5.0, std=0.5):
  """`num_modes` equal-weight isotropic Gaussians on a circle: a 2D test target."""
  angle = 2 * jnp.pi * jnp.arange(num_modes) / num_modes
  means = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
  return isotropic_mixture(jnp.full((num_modes,), 1.0 / num_modes), means, std)


def mode_mixture(means, std):
  """The equal-weight mixture of isotropic modes at `means` (K, D) with std `std`;
  ConfigError for a shape that is not a non-empty (K, D) list of points."""
  means = np.asarray(means, np.float32)
  if means.ndim != 2 or not means.size:
    raise ConfigError(f"data.means must be a non-empty list of points (K, D); got shape "
                      f"{means.shape}.")
  return isotropic_mixture(np.full(len(means), 1.0 / len(means)), means, std)


def grid_means(side, spacing=1.0):
  """The side x side square grid of mode centres, centred at the origin: (side^2, 2)."""
  axis = spacing * (np.arange(side) - (side - 1) / 2)
  return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2).tolist()
