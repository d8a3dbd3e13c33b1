"""The model interface: a pair of pure functions, `init` and `apply`.

  params = model.init(key)
  out = model.apply(params, x, t, cond=None, *, dropout_key=None)
                                     # x: (B, *data_shape), t: () or (B,), cond: (B,) labels

`apply` returns an array shaped like `x` (a velocity, score, noise or data prediction,
depending on the objective). Dropout (where a model has it) runs only when `dropout_key`
is given, i.e. in training. Models are built by name from `MODELS`.
"""
from typing import Any, Callable, NamedTuple

import jax.numpy as jnp

from diffjax.registry import Registry

MODELS = Registry("model")


class Model(NamedTuple):
  init: Callable[..., Any]
  apply: Callable[..., Any]


def broadcast_time(t, batch_size):
  """Returns t as a (batch_size,) float32 vector; accepts a scalar or a (B,) vector."""
  t = jnp.asarray(t, jnp.float32)
  if t.ndim == 0:
    return jnp.full((batch_size,), t)
  if t.shape != (batch_size,):
    raise ValueError(f"t must be a scalar or have shape ({batch_size},); got {t.shape}.")
  return t


def sinusoidal_embedding(t, dim, max_period=10_000.0):
  """(B,) times in [0, 1] -> (B, dim) sine/cosine features ("Attention Is All You Need", 3.5).

  Times are scaled by 1000 so that [0, 1] spans the usual range of diffusion step indices.
  """
  half = dim // 2
  freqs = jnp.exp(-jnp.log(max_period) * jnp.arange(half) / half)
  angles = 1000.0 * t[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def build_model(name: str, data_shape, **kwargs) -> Model:
  """Builds the model registered as `name` for data of shape `data_shape`."""
  return MODELS.get(name)(tuple(data_shape), **kwargs)
