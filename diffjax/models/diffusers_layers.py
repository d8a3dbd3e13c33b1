"""Layers shared by the diffusers-compatible networks (`diffusers_unet`, `diffusers_dit`).

Modules are named as diffusers names its submodules (a list index i becomes the suffix
"_i": `down_blocks.0.resnets.1` is the flax scope down_blocks_0/resnets_1), so that
`diffjax.interop` maps parameter names without tables. These networks take diffusers'
integer timesteps k in [0, T); their `Model` wrappers feed them k(t) of the discrete DDPM
path (`diffjax.paths.ddpm.timestep_of`).
"""
import math
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.base import Model, broadcast_time
from diffjax.models.unet import fast_init_rng, multi_head_attention
from diffjax.paths.ddpm import timestep_of

# Scopes that diffusers holds in lists (nn.ModuleList / nn.Sequential): "name_i" <-> "name.i".
LIST_SCOPES = ("down_blocks", "up_blocks", "resnets", "attentions", "downsamplers",
               "upsamplers", "transformer_blocks", "to_out", "net")
ACTIVATIONS = ("silu", "swish")


def check_activation(act_fn):
  if act_fn not in ACTIVATIONS:
    raise ConfigError(f"act_fn {act_fn!r} is not supported; valid: {', '.join(ACTIVATIONS)}.")


def timestep_embedding(timesteps, dim, flip_sin_to_cos=False, freq_shift=1.0,
                       max_period=10_000.0):
  """(B,) timesteps (fractional allowed) -> (B, dim) sinusoidal features, diffusers'
  `get_timestep_embedding`: frequencies exp(-log(max_period) i / (dim / 2 - freq_shift)),
  i < dim / 2, [sin, cos] ([cos, sin] if flip_sin_to_cos), zero-padded to an odd dim
  ("Attention Is All You Need", 3.5; the DDPM reference code uses freq_shift = 1)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32)
                  / (half - freq_shift))
  angles = jnp.asarray(timesteps, jnp.float32)[:, None] * freqs[None]
  sin, cos = jnp.sin(angles), jnp.cos(angles)
  features = jnp.concatenate([cos, sin] if flip_sin_to_cos else [sin, cos], axis=-1)
  if dim % 2:
    features = jnp.pad(features, ((0, 0), (0, 1)))
  return features


class TimestepMLP(nn.Module):
  """diffusers' TimestepEmbedding: linear_1, SiLU, linear_2; (B, F) -> (B, features)."""
  features: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.features, name="linear_2")(
        nn.silu(nn.Dense(self.features, name="linear_1")(x)))


class SelfAttention(nn.Module):
  """Multi-head self-attention over tokens with diffusers' projections to_q, to_k, to_v,
  to_out.0 (softmax(q k^T / sqrt(d)) v, "Attention Is All You Need", eq. 1).

  x: (B, N, D) -> (B, N, D); heads * head_dim = D.
  """
  num_heads: int
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, n, d = x.shape
    project = lambda name, bias=self.use_bias: nn.Dense(d, use_bias=bias, dtype=self.dtype,
                                                         name=name)
    q, k, v = (project(name)(x).reshape(b, n, self.num_heads, d // self.num_heads)
               for name in ("to_q", "to_k", "to_v"))
    h = multi_head_attention(q, k, v).reshape(b, n, d)
    return project("to_out_0", True)(h)


def image_channels(data_shape, out_channels, name):
  """(H, W, C) of data_shape, checking out_channels is C or 2C (a learned variance)."""
  if len(data_shape) != 3:
    raise ConfigError(f"{name} needs images of shape (H, W, C); got data_shape "
                      f"{tuple(data_shape)}.")
  c = data_shape[-1]
  out_channels = c if out_channels is None else out_channels
  if out_channels not in (c, 2 * c):
    raise ConfigError(f"{name}: out_channels={out_channels} must be the image's {c} "
                      f"channels or twice them (a learned variance).")
  return out_channels


def timestep_model(module, data_shape, out_channels, num_classes, num_train_timesteps,
                   bottleneck: bool) -> Model:
  """Model(init, apply) on diffjax time for a flax module called as
  module(x, timesteps, cond[, bottleneck_edit]) -> out or (out, bottleneck)."""
  channels = data_shape[-1]
  init_cond = jnp.zeros((1,), jnp.int32) if num_classes else None

  def init(key):
    with fast_init_rng():
      return module.init(key, jnp.zeros((1, *data_shape)), jnp.zeros((1,)),
                         init_cond)["params"]

  def network(params, x, t, cond, dropout_key, *edit):
    timesteps = timestep_of(broadcast_time(t, x.shape[0]), num_train_timesteps)
    rngs = {} if dropout_key is None else {"dropout": dropout_key}
    return module.apply({"params": params}, x, timesteps, cond, *edit, rngs=rngs)

  def image(out, full_output):
    return out if full_output or out_channels == channels else out[..., :channels]

  if not bottleneck:
    def apply(params, x, t, cond=None, *, dropout_key=None, full_output=False):
      return image(network(params, x, t, cond, dropout_key), full_output)
    return Model(init, apply)

  def apply_with_bottleneck(params, x, t, cond=None, *, dropout_key=None,
                            return_bottleneck: bool = False,
                            bottleneck_edit: Optional[Callable[[jax.Array], jax.Array]] = None,
                            full_output: bool = False):
    out, h = network(params, x, t, cond, dropout_key, bottleneck_edit)
    out = image(out, full_output)
    return (out, h) if return_bottleneck else out

  return Model(init, apply_with_bottleneck)
