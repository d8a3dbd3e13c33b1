"""A time-conditioned MLP for vector data (2D toys, low-dimensional targets)."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.base import MODELS, Model, broadcast_time, sinusoidal_embedding
from diffjax.registry import Registry

ACTIVATIONS = Registry("activation")
for _name, _fn in {"silu": nn.silu, "selu": nn.selu, "gelu": nn.gelu, "relu": nn.relu,
                   "tanh": jnp.tanh, "softplus": nn.softplus}.items():
  ACTIVATIONS.register(_name, _fn)


class TimeMLP(nn.Module):
  """MLP on [x, time features (, class embedding)] with `depth` hidden layers of `width`.

  time_embedding: "concat" appends t itself (as TorchCFM's MLP does); "sinusoidal"
  appends `time_dim` sine/cosine features of t.
  """
  out_dim: int
  width: int = 128
  depth: int = 3
  activation: str = "silu"
  time_embedding: str = "sinusoidal"
  time_dim: int = 32
  num_classes: int = 0

  @nn.compact
  def __call__(self, x, t, cond=None):
    act = ACTIVATIONS.get(self.activation)
    t = broadcast_time(t, x.shape[0])
    if self.time_embedding == "concat":
      features = [x, t[:, None]]
    elif self.time_embedding == "sinusoidal":
      features = [x, sinusoidal_embedding(t, self.time_dim)]
    else:
      raise ValueError(f"Unknown time_embedding {self.time_embedding!r}; valid: "
                       "concat, sinusoidal.")
    if self.num_classes:
      if cond is None:  # The unconditional model: the null class of condition dropout.
        cond = jnp.full((x.shape[0],), self.num_classes, jnp.int32)
      # num_classes + 1 ids: the last is the null class of condition dropout.
      features.append(nn.Embed(self.num_classes + 1, self.time_dim)(cond))
    h = jnp.concatenate(features, axis=-1)
    for _ in range(self.depth):
      h = act(nn.Dense(self.width)(h))
    return nn.Dense(self.out_dim)(h)


@MODELS.register("mlp")
def mlp(data_shape: Sequence[int], width=128, depth=3, activation="silu",
        time_embedding="sinusoidal", time_dim=32, num_classes=0) -> Model:
  """Builds the time-conditioned MLP for data of shape `data_shape` = (D,)."""
  for key, value in (("width", width), ("depth", depth), ("time_dim", time_dim)):
    if not (isinstance(value, int) and value >= 1):
      raise ConfigError(f"model.{key} must be an integer >= 1; got {value!r}.")
  if not (isinstance(num_classes, int) and num_classes >= 0):
    raise ConfigError(f"model.num_classes must be an integer >= 0; got {num_classes!r}.")
  if len(data_shape) != 1:
    raise ValueError(f"mlp needs vector data of shape (D,); got data_shape {data_shape}. "
                     "Use an image model for images.")
  ACTIVATIONS.get(activation)  # Fail early on a bad name.
  module = TimeMLP(out_dim=data_shape[0], width=width, depth=depth, activation=activation,
                   time_embedding=time_embedding, time_dim=time_dim,
                   num_classes=num_classes)

  def init(key):
    x = jnp.zeros((1, *data_shape))
    cond = jnp.zeros((1,), jnp.int32) if num_classes else None
    return module.init(key, x, jnp.zeros(()), cond)["params"]

  def apply(params, x, t, cond=None, *, dropout_key=None):
    del dropout_key  # The MLP has no dropout.
    return module.apply({"params": params}, x, t, cond)

  return Model(init, apply)
