"""A residual MLP denoiser for vector data: transitions, network weights, latents.

"Synthetic Experience Replay" (Lu, Ball, Teh & Parker-Holder, Sec. 3.1) denoises
transitions with a residual MLP: the input (with its condition) is projected to the width
and added to a time embedding, then `depth` blocks h <- h + Dense(act(LN(h))) and a last
act -> Dense. Layer normalisation in the blocks is optional (`layer_norm`).
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.base import (MODELS, Model, broadcast_time, check_condition,
                                 embed_condition, init_condition, sinusoidal_embedding)
from diffjax.models.mlp import ACTIVATIONS


class ResidualMLP(nn.Module):
  """(B, D) inputs, (B,) times -> (B, D); conditions as `diffjax.models.base`."""
  out_dim: int
  width: int = 256
  depth: int = 4
  activation: str = "relu"
  layer_norm: bool = True
  time_dim: int = 64
  num_classes: int = 0
  cond_dim: int = 0

  @nn.compact
  def __call__(self, x, t, cond=None):
    act = ACTIVATIONS.get(self.activation)
    t = broadcast_time(t, x.shape[0])
    embedding = sinusoidal_embedding(t, self.time_dim)
    embedding = nn.Dense(self.width)(nn.silu(nn.Dense(self.width)(embedding)))
    condition = embed_condition(cond, self.num_classes, self.cond_dim, self.width,
                                x.shape[0])
    if condition is not None:
      embedding = embedding + condition
    h = nn.Dense(self.width)(x) + embedding
    for _ in range(self.depth):
      inner = nn.LayerNorm()(h) if self.layer_norm else h
      h = h + nn.Dense(self.width)(act(inner))
    return nn.Dense(self.out_dim)(act(h))


@MODELS.register("residual_mlp")
def residual_mlp(data_shape: Sequence[int], width=256, depth=4, activation="relu",
                 layer_norm=True, time_dim=64, num_classes=0, cond_dim=0) -> Model:
  """Builds the residual MLP for data of shape `data_shape` = (D,)."""
  for key, value in (("width", width), ("depth", depth), ("time_dim", time_dim)):
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
      raise ConfigError(f"model.{key} must be an integer >= 1; got {value!r}.")
  if not isinstance(layer_norm, bool):
    raise ConfigError(f"model.layer_norm must be True or False; got {layer_norm!r}.")
  check_condition(num_classes, cond_dim)
  if len(data_shape) != 1:
    raise ConfigError(f"residual_mlp needs vector data of shape (D,); got {data_shape}.")
  ACTIVATIONS.get(activation)
  module = ResidualMLP(out_dim=data_shape[0], width=width, depth=depth,
                       activation=activation, layer_norm=layer_norm, time_dim=time_dim,
                       num_classes=num_classes, cond_dim=cond_dim)

  def init(key):
    x = jnp.zeros((1, *data_shape))
    return module.init(key, x, jnp.zeros(()), init_condition(num_classes, cond_dim))["params"]

  def apply(params, x, t, cond=None, *, dropout_key=None):
    del dropout_key  # No dropout.
    return module.apply({"params": params}, x, t, cond)

  return Model(init, apply)
