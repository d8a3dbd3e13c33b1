"""PaD-TS's population-level view of multichannel series: the distribution, over a
population of series, of each pair of channels' correlation.

"Population Aware Diffusion for Time Series Generation" (Li et al., AAAI 2025, Sec. 3-4):
for a series x (L, C) let r_ij(x) be the Pearson correlation over time of channels i and j
(i > j: P = C (C - 1) / 2 pairs). A population of series gives, for each pair, a
distribution of r_ij; the cross-correlation distribution shift between two populations
is the mean over pairs of the squared maximum mean discrepancy of those 1-D distributions
(their FDDS; multi-bandwidth Gaussian kernels, the biased V-statistic, so two populations
with the same multiset of correlations are exactly 0 apart). PaD-TS trains with the same
quantity between the model's denoised estimates x1_hat and the real batch beside the
denoising loss (the population aware training objective, eq. 9), with one diffusion time
per batch so that the x1_hat form one population. The value distribution shift (VDS) is
the same MMD on each channel's values: the marginal quality the population term should
not spoil.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.fields import complete

BANDWIDTHS = (0.05, 0.1, 0.2, 0.5, 1.0)


def channel_correlations(x, eps=1e-6):
  """(B, L, C) -> (B, C (C - 1) / 2): each series' Pearson correlation of channels i > j
  over time (rows i = 1..C-1, j < i, in that order; a constant channel gives 0)."""
  x = jnp.asarray(x, jnp.float32)
  centred = x - jnp.mean(x, 1, keepdims=True)
  scale = jnp.sqrt(jnp.sum(centred ** 2, 1, keepdims=True))
  unit = centred / jnp.maximum(scale, eps)
  matrix = jnp.einsum("bli,blj->bij", unit, unit)
  rows, cols = np.tril_indices(x.shape[-1], -1)
  return matrix[:, rows, cols]


def mmd_squared(a, b, bandwidths=BANDWIDTHS):
  """Biased squared MMD of 1-D samples a (N,) and b (M,) with the kernel
  sum_h exp(-(u - v)^2 / (2 h^2))."""
  def kernel(u, v):
    d2 = (u[:, None] - v[None, :]) ** 2
    return sum(jnp.exp(-d2 / (2 * h ** 2)) for h in bandwidths)
  return jnp.mean(kernel(a, a)) + jnp.mean(kernel(b, b)) - 2 * jnp.mean(kernel(a, b))


@functools.partial(jax.jit, static_argnums=2)
def _per_column_mmd(a, b, bandwidths):
  """(N, K), (M, K) -> (K,) squared MMD of each column's values."""
  return jax.vmap(lambda u, v: mmd_squared(u, v, bandwidths), in_axes=(1, 1))(a, b)


def correlation_shift(generated, real, bandwidths=BANDWIDTHS):
  """The cross-correlation distribution shift of populations generated (N, L, C) and real
  (M, L, C): mean over channel pairs of the squared MMD of their correlations (>= 0; 0
  when both have the same correlations)."""
  return jnp.mean(_per_column_mmd(channel_correlations(generated),
                                  channel_correlations(real), tuple(bandwidths)))


def population_loss(denoised, real, bandwidths=BANDWIDTHS):
  """PaD-TS's population term between the model's denoised estimates (B, L, C) and the
  real batch (B, L, C): `correlation_shift`, differentiable in `denoised`."""
  return correlation_shift(denoised, real, bandwidths)


def value_shift(generated, real, max_values=2048, seed=0, bandwidths=BANDWIDTHS):
  """The value distribution shift: mean over channels of the squared MMD of the values
  (all times and series pooled; at most `max_values` drawn per side, for memory)."""
  rng = np.random.default_rng(seed)
  pick = lambda x: x.reshape(-1, x.shape[-1])[
      rng.choice(x.shape[0] * x.shape[1], min(max_values, x.shape[0] * x.shape[1]),
                 replace=False)]
  return jnp.mean(_per_column_mmd(jnp.asarray(pick(np.asarray(generated))),
                                  jnp.asarray(pick(np.asarray(real))), tuple(bandwidths)))


def population_aware_loss(pipeline, weight, series_shape, min_time=0.0,
                          bandwidths=BANDWIDTHS):
  """loss(params, key, shard, x1) -> (loss, aux) for flattened series x1 (B, L * C): the
  pipeline's denoising loss plus `weight` times the population term between the real
  batch and the model's denoised estimates x1_hat(x_t, t) at one time t ~ U[min_time, 1)
  shared by the batch (PaD-TS's same diffusion step sampler); weight 0 is the plain
  loss. series_shape = (L, C)."""
  path = pipeline.path

  def loss(params, key, shard, x1):
    k_base, k_time, k_source, k_path = jax.random.split(key, 4)
    base, aux = pipeline.loss(params, k_base, shard, x1)
    if not weight:
      return base, aux
    n = x1.shape[0]
    t = jnp.full((n,), jax.random.uniform(k_time, (), minval=min_time, maxval=1.0))
    x_t = path.sample(k_path, t, shard(pipeline.source(k_source, n)), x1)
    denoised = complete(pipeline.fields(params), path).evaluate(x_t, t).data
    term = population_loss(denoised.reshape((n, *series_shape)),
                           x1.reshape((n, *series_shape)), bandwidths)
    return base + weight * term, {**aux, "population": term}
  return loss
