"""The model interface: a pair of pure functions, `init` and `apply`.

  params = model.init(key)
  out = model.apply(params, x, t, cond=None, *, dropout_key=None)
                                     # x: (B, *data_shape), t: () or (B,), cond: see below

`apply` returns an array shaped like `x` (a velocity, score, noise or data prediction,
depending on the objective). Dropout (where a model has it) runs only when `dropout_key`
is given, i.e. in training. Models are built by name from `MODELS`.

Conditions (`embed_condition`, shared by every model): a model built with
`num_classes = K > 0` takes (B,) int labels in [0, K] (K, also used when cond is None, is
the null class of condition dropout); one built with `cond_dim = d > 0` takes (B, d + 1)
conditioning arrays marked by `diffjax.conditioning.mark_present` (the d values and a
presence flag; cond None is the null array, zeros with flag 0). Either is added to the
model's time embedding.
"""
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
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


def check_condition(num_classes, cond_dim):
  """Refuses a bad num_classes / cond_dim pair (each an integer >= 0, not both > 0)."""
  for key, value in (("num_classes", num_classes), ("cond_dim", cond_dim)):
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
      raise ConfigError(f"model.{key} must be an integer >= 0; got {value!r}.")
  if num_classes and cond_dim:
    raise ConfigError(f"A model is conditioned on class labels (model.num_classes="
                      f"{num_classes}) or on arrays (model.cond_dim={cond_dim}), not both.")


def init_condition(num_classes, cond_dim):
  """The (1, ...) condition a model's init traces with (None for an unconditional model)."""
  if num_classes:
    return jnp.zeros((1,), jnp.int32)
  if cond_dim:
    return jnp.zeros((1, cond_dim + 1), jnp.float32)
  return None


def embed_condition(cond, num_classes, cond_dim, features, batch_size):
  """(B, features) embedding of the condition (module docstring), or None for an
  unconditional model. Call inside a module's compact method: labels use an nn.Embed of
  K + 1 ids (its parameters are named as the module's next Embed), arrays a Dense-SiLU-
  Dense network named cond_embed_0 / cond_embed_1."""
  if num_classes:
    if cond is None:
      cond = jnp.full((batch_size,), num_classes, jnp.int32)
    return nn.Embed(num_classes + 1, features)(cond)
  if cond_dim:
    if cond is None:
      cond = jnp.zeros((batch_size, cond_dim + 1), jnp.float32)
    cond = jnp.asarray(cond, jnp.float32)
    if cond.shape != (batch_size, cond_dim + 1):
      raise ValueError(f"A model with cond_dim={cond_dim} takes conditions of shape "
                       f"(B, {cond_dim + 1}) (the values and a presence flag, "
                       f"diffjax.conditioning.mark_present); got {cond.shape}.")
    hidden = nn.silu(nn.Dense(features, name="cond_embed_0")(cond))
    return nn.Dense(features, name="cond_embed_1")(hidden)
  return None


def build_model(name: str, data_shape, *, pretrained: str = "", **kwargs) -> Model:
  """Builds the model registered as `name` for data of shape `data_shape`.

  pretrained: "" (train from `init`), or a diffusers folder (`diffjax.interop.diffusers`)
  whose config.json gives the architecture and whose weights `init` returns.
  """
  if pretrained:
    # The checkpoint reader imports this module and the optional safetensors: load it here.
    from diffjax.interop import diffusers  # pylint: disable=g-import-not-at-top
    return diffusers.pretrained_model(name, tuple(data_shape), pretrained, **kwargs)
  return MODELS.get(name)(tuple(data_shape), **kwargs)
