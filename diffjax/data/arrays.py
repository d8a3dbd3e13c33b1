"""A dataset held in memory as an on-device sampler (for notebooks and small studies)."""
import jax
import jax.numpy as jnp


def array_sampler(x, labels=None):
  """draw(key, n): n rows of `x` (N, ...) drawn uniformly with replacement, with their
  `labels` (N,) when given ((rows, labels) then). Jit-compatible; the arrays live on
  the device once."""
  x = jnp.asarray(x)
  labels = None if labels is None else jnp.asarray(labels)

  def draw(key, n):
    index = jax.random.randint(key, (n,), 0, x.shape[0])
    return x[index] if labels is None else (x[index], labels[index])

  return draw
