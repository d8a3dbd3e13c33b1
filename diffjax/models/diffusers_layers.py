"""Layers shared by the diffusers-compatible networks (`diffusers_unet`, `diffusers_dit`).

Modules are named as diffusers names its submodules (a list index i becomes the suffix
"_i": `down_blocks.0.resnets.1` is the flax scope down_blocks_0/resnets_1), so that
`diffjax.interop` maps parameter names without tables. These networks take diffusers'
integer timesteps k in [0, T); their `Model` wrappers feed them k(t) of the discrete DDPM
path (`diffjax.paths.ddpm.timestep_of`).
"""
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.unet import multi_head_attention

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
