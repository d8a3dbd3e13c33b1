"""TRADES's denoiser: a transformer over the noisy next order, the recent orders and the
book ("TRADES: Generating Realistic Market Simulations with Diffusion Models", Berti et al.
2025, Sec. 4.2: a transformer denoiser conditioned on the market's recent history).

Registered as model "order_transformer" for orders of shape (ORDER_DIM,) with
cond_dim = book_dim(history) (`diffjax.science.order_flow`): the condition array holds the
last `history` orders and the book features. Tokens: the noisy order (plus the time
embedding), each past order and the book, each projected to `width`, with learned
position embeddings; `depth` pre-norm self-attention blocks; the output is read from the
noisy order's token.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.base import MODELS, Model, broadcast_time, sinusoidal_embedding
from diffjax.science.order_flow import ORDER_DIM, book_dim


class OrderTransformer(nn.Module):
  """x (B, D), t (B,), cond (B, history * ORDER_DIM + BOOK_DIM + 1) (values and a
  presence flag, `diffjax.conditioning.mark_present`) -> (B, D)."""
  out_dim: int
  history: int
  width: int = 64
  depth: int = 2
  num_heads: int = 4
  time_dim: int = 32

  @nn.compact
  def __call__(self, x, t, cond):
    batch = x.shape[0]
    t = broadcast_time(t, batch)
    values = cond[:, :-1]
    past = values[:, :self.history * ORDER_DIM].reshape(batch, self.history, ORDER_DIM)
    book = values[:, self.history * ORDER_DIM:]
    time = nn.Dense(self.width)(nn.silu(nn.Dense(self.width)(
        sinusoidal_embedding(t, self.time_dim))))
    tokens = jnp.concatenate([(nn.Dense(self.width)(x) + time)[:, None],
                              nn.Dense(self.width)(past),
                              nn.Dense(self.width)(book)[:, None]], 1)
    position = self.param("position", nn.initializers.normal(0.02),
                          (1, self.history + 2, self.width))
    h = tokens + position
    for _ in range(self.depth):
      y = nn.LayerNorm()(h)
      h = h + nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(y, y)
      y = nn.LayerNorm()(h)
      h = h + nn.Dense(self.width)(nn.gelu(nn.Dense(4 * self.width)(y)))
    return nn.Dense(self.out_dim)(nn.LayerNorm()(h[:, 0]))


@MODELS.register("order_transformer")
def order_transformer(data_shape: Sequence[int], *, history=16, width=64, depth=2,
                      num_heads=4, time_dim=32, cond_dim=0, num_classes=0) -> Model:
  """The TRADES denoiser for orders (ORDER_DIM,) conditioned on `history` past orders."""
  for key, value in (("history", history), ("width", width), ("depth", depth),
                     ("num_heads", num_heads), ("time_dim", time_dim)):
    if not (isinstance(value, int) and value >= 1):
      raise ConfigError(f"model.{key} must be an integer >= 1; got {value!r}.")
  if width % num_heads:
    raise ConfigError(f"model.width={width} must be divisible by model.num_heads="
                      f"{num_heads}.")
  if tuple(data_shape) != (ORDER_DIM,):
    raise ConfigError(f"order_transformer generates orders of shape ({ORDER_DIM},); got "
                      f"data of shape {tuple(data_shape)}.")
  if num_classes or cond_dim != book_dim(history):
    raise ConfigError(f"order_transformer is conditioned on the market history: "
                      f"model.cond_dim must be {book_dim(history)} for model.history="
                      f"{history} (got {cond_dim}) and model.num_classes 0.")
  module = OrderTransformer(ORDER_DIM, history, width, depth, num_heads, time_dim)

  def init(key):
    return module.init(key, jnp.zeros((1, ORDER_DIM)), jnp.zeros(()),
                       jnp.zeros((1, cond_dim + 1)))["params"]

  def apply(params, x, t, cond=None, *, dropout_key=None):
    del dropout_key  # No dropout.
    if cond is None:
      cond = jnp.zeros((x.shape[0], cond_dim + 1), x.dtype)
    return module.apply({"params": params}, x, t, cond)

  return Model(init, apply)
