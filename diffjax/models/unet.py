"""A U-Net for images in the DDPM++ / NCSN++ family, as a pure (init, apply) pair.

Architecture after Song et al., "Score-Based Generative Modeling through Stochastic
Differential Equations" (ICLR 2021), Appendix H.1 (DDPM++ / NCSN++), which refines the
U-Net of Ho et al., "Denoising Diffusion Probabilistic Models" (2020), Appendix B:
residual blocks with GroupNorm and a time (and class) embedding added after their first
convolution, skip connections rescaled by 1/sqrt(2), self-attention at chosen resolutions,
strided-convolution downsampling and nearest-neighbour + convolution upsampling. The time
embedding is either sinusoidal (DDPM++) or random Fourier features (NCSN++).

  model = build_model("unet", (32, 32, 3), channels=128, channel_mults=(1, 2, 2, 2),
                      num_res_blocks=4, attention_resolutions=(16,), dropout=0.1)
  params = model.init(key)
  out = model.apply(params, x, t, cond=None)                 # x: (B, H, W, C) -> same shape
  out = model.apply(params, x, t, dropout_key=key)           # training: dropout active
  out, h = model.apply(params, x, t, return_bottleneck=True)
      # h: (B, H / 2^(L-1), W / 2^(L-1), channels * channel_mults[-1]), the output of the
      # middle block (L = len(channel_mults)), for latent-space analysis.
  out = model.apply(params, x, t, bottleneck_edit=lambda h: h + delta)
      # the decoder reads edit(h) instead of h (h-space editing, "Discovering Interpretable
      # Directions in the Semantic Latent Space of Diffusion Models", Haas et al.); the
      # returned bottleneck is the unedited h. Without an edit the outputs are unchanged.
  out, features = model.apply(params, x, t, return_encoder_features=True)
  out = model.apply(params, x, t_next, encoder_features=features)
      # features: (skips, h), what the encoder and middle block computed; given them, only
      # the decoder runs, with t_next's embedding (Faster Diffusion's encoder propagation:
      # "Faster Diffusion: Rethinking the Role of UNet Encoder in Diffusion Models", Li et
      # al.). Here the encoder is the input convolution, the down blocks and the middle block.

Class conditioning (num_classes > 0): `cond` is (B,) int labels in [0, num_classes]; the
extra label `num_classes` (also used when cond is None) is the "no class" token that
classifier-free guidance trains and samples with. Array conditioning (cond_dim = d > 0):
`cond` is (B, d + 1), the values and a presence flag (`diffjax.models.base`).

Dropout runs only when `dropout_key` is given. `remat=True` rematerialises every residual
and attention block in the backward pass (less activation memory, more compute);
`dtype="bfloat16"` computes convolutions, dense layers and attention in bfloat16 while
parameters, normalisation statistics, and the output stay float32.
"""
import itertools
import math
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.models.base import (MODELS, Model, broadcast_time, check_condition,
                                 embed_condition, init_condition, sinusoidal_embedding)

_zeros = nn.initializers.zeros


def num_groups(channels: int, max_groups: int = 32) -> int:
  """GroupNorm groups: the largest divisor of `channels` <= min(max_groups, channels / 4).

  At least 4 channels per group: with one channel per group GroupNorm becomes instance
  normalisation and erases the per-channel time/class embedding a ResBlock adds before it.
  """
  limit = max(1, min(max_groups, channels // 4))
  return max(g for g in range(1, limit + 1) if channels % g == 0)


def fourier_embedding(t, dim, scale=16.0):
  """(B,) times -> (B, dim) Gaussian random Fourier features [sin 2 pi w t, cos 2 pi w t].

  Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low
  Dimensional Domains" (2020), section 4, as used for NCSN++ (Song et al. 2021, App. H.1).
  The frequencies w ~ N(0, scale^2) are fixed constants (seeded), not trained parameters.
  """
  w = scale * np.random.default_rng(0).standard_normal(dim // 2).astype(np.float32)
  angles = 2 * math.pi * t[:, None] * jnp.asarray(w)[None]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def fast_init_rng():
  """A context for parameter initialisation with the classic (non-partitionable) threefry.

  Initialising a U-Net draws dozens of random tensors; on CPU, XLA compiles them several
  times faster this way (e.g. 9 s instead of 30 s for a tiny U-Net on 2 cores). The
  parameters are valid either way; only their random values differ.
  """
  return jax.threefry_partitionable(False)


def _conv(features, dtype, kernel=3, stride=1, zero_init=False, name=None):
  kwargs = {"kernel_init": _zeros} if zero_init else {}
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME",
                 dtype=dtype, name=name, **kwargs)


class GroupNorm(nn.Module):
  """Group normalisation (Wu & He, "Group Normalization", 2018) over (H, W, C / groups).

  The math and parameters (`scale`, `bias`) of flax.linen.GroupNorm with its defaults
  (epsilon 1e-6, variance E[x^2] - E[x]^2 clipped at 0, statistics in float32), written so
  that XLA on CPU reads x once for both statistics and normalises with one fused
  multiply-add: y = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a.
  """
  num_groups: int
  epsilon: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,))
    bias = self.param("bias", _zeros, (c,))
    x = x.astype(jnp.float32)
    groups = x.reshape(x.shape[0], -1, self.num_groups, c // self.num_groups)
    mean = jnp.mean(groups, axis=(1, 3))
    var = jnp.maximum(jnp.mean(jnp.square(groups), axis=(1, 3)) - jnp.square(mean), 0.0)
    per_channel = lambda stat: jnp.repeat(stat, c // self.num_groups, axis=1)  # (B, C)
    a = per_channel(jax.lax.rsqrt(var + self.epsilon)) * scale[None]
    b = bias[None] - per_channel(mean) * a
    expand = lambda v: v.reshape(v.shape[0], *(1,) * (x.ndim - 2), c)
    return (x * expand(a) + expand(b)).astype(self.dtype)


class ResBlock(nn.Module):
  """GroupNorm-SiLU-conv, + embedding, GroupNorm-SiLU-dropout-conv; (x + h) / sqrt(2).

  x: (B, H, W, C_in), emb: (B, E) -> (B, H, W, out_channels). The last convolution starts
  at zero, so each block starts as a rescaled identity (Song et al. 2021, App. H.1).
  """
  out_channels: int
  dropout: float = 0.0
  max_groups: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, emb):
    c = self.out_channels
    h = nn.silu(GroupNorm(num_groups(x.shape[-1], self.max_groups), dtype=self.dtype)(x))
    h = _conv(c, self.dtype)(h)
    h = h + nn.Dense(c, dtype=self.dtype)(nn.silu(emb))[:, None, None, :]
    h = nn.silu(GroupNorm(num_groups(c, self.max_groups), dtype=self.dtype)(h))
    h = nn.Dropout(self.dropout, deterministic=not self.has_rng("dropout"))(h)
    h = _conv(c, self.dtype, zero_init=True)(h)
    if x.shape[-1] != c:
      x = _conv(c, self.dtype, kernel=1)(x)
    return (x + h) / math.sqrt(2.0)


def multi_head_attention(q, k, v):
  """softmax(q k^T / sqrt(d)) v per head ("Attention Is All You Need", eq. 1).

  q: (B, N, heads, d), k, v: (B, M, heads, d) -> (B, N, heads, d). Logits and softmax are
  computed in float32 whatever the compute dtype. Written for XLA:CPU, with the same math:
  heads lead (B, heads, N, d) so every product is a plain batched matrix product; q, not
  the (N, M) logits, is scaled by 1 / sqrt(d); the softmax denominator divides the (N, d)
  output rather than the (N, M) weights (one pass fewer over the largest tensor).
  """
  q, k, v = (jnp.swapaxes(a, 1, 2) for a in (q, k, v))  # (B, heads, N, d)
  q = q / jnp.asarray(math.sqrt(q.shape[-1]), q.dtype)
  logits = jnp.einsum("bhnd,bhmd->bhnm", q, k, preferred_element_type=jnp.float32)
  # Subtracting the (constant) row maximum keeps exp finite; it cancels in the ratio.
  weights = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
  out = jnp.einsum("bhnm,bhmd->bhnd", weights.astype(v.dtype), v,
                   preferred_element_type=jnp.float32)
  out = out / jnp.sum(weights, axis=-1, keepdims=True)
  return jnp.swapaxes(out, 1, 2).astype(v.dtype)


class AttentionBlock(nn.Module):
  """Multi-head self-attention over the H * W positions, residual, rescaled by 1/sqrt(2).

  x: (B, H, W, C) -> (B, H, W, C); C must be divisible by num_heads.
  """
  num_heads: int = 1
  max_groups: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, height, width, c = x.shape
    if c % self.num_heads:
      raise ValueError(f"{c} channels cannot be split into {self.num_heads} heads.")
    h = GroupNorm(num_groups(c, self.max_groups), dtype=self.dtype)(x)
    qkv = nn.Dense(3 * c, dtype=self.dtype)(h.reshape(b, height * width, c))
    q, k, v = jnp.split(qkv.reshape(b, height * width, 3 * self.num_heads, -1), 3, axis=2)
    h = multi_head_attention(q, k, v).reshape(b, height * width, c)
    h = nn.Dense(c, dtype=self.dtype, kernel_init=_zeros)(h)
    return (x + h.reshape(x.shape)) / math.sqrt(2.0)


class UNet(nn.Module):
  """The U-Net module; see the module docstring. Returns (output, bottleneck)."""
  out_channels: int
  channels: int = 128
  channel_mults: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (16,)
  dropout: float = 0.1
  time_embedding: str = "sinusoidal"
  fourier_scale: float = 16.0
  num_classes: int = 0
  num_heads: int = 1
  max_groups: int = 32
  remat: bool = False
  dtype: Any = jnp.float32
  cond_dim: int = 0

  @nn.compact
  def __call__(self, x, t, cond=None, bottleneck_edit=None, encoder_features=None):
    """-> (output, bottleneck, encoder features). With `encoder_features` (the third
    output of an earlier call: the skips and the middle block's output) the encoder and
    the middle block are not run; the decoder reads them with this call's time (and
    class) embedding (Faster Diffusion's encoder propagation, `diffjax.acceleration`)."""
    res_cls = nn.remat(ResBlock) if self.remat else ResBlock
    attn_cls = nn.remat(AttentionBlock) if self.remat else AttentionBlock
    # Explicit names keep the parameter tree the same with and without remat, and with
    # the encoder skipped (the names are those flax would give in call order).
    res_ids, attn_ids, conv_ids = itertools.count(), itertools.count(), itertools.count()
    res = lambda c: res_cls(c, dropout=self.dropout, max_groups=self.max_groups,
                            dtype=self.dtype, name=f"ResBlock_{next(res_ids)}")
    attn = lambda: attn_cls(num_heads=self.num_heads, max_groups=self.max_groups,
                            dtype=self.dtype, name=f"AttentionBlock_{next(attn_ids)}")
    conv = lambda c, **kw: _conv(c, self.dtype, name=f"Conv_{next(conv_ids)}", **kw)
    emb = self._embedding(t, cond, x.shape[0])

    if encoder_features is None:
      h = conv(self.channels)(x.astype(self.dtype))
      skips = [h]
      for level, mult in enumerate(self.channel_mults):
        for _ in range(self.num_res_blocks):
          h = res(self.channels * mult)(h, emb)
          if h.shape[1] in self.attention_resolutions:
            h = attn()(h)
          skips.append(h)
        if level < len(self.channel_mults) - 1:
          h = conv(h.shape[-1], stride=2)(h)
          skips.append(h)
      h = res(h.shape[-1])(h, emb)
      h = attn()(h)
      h = res(h.shape[-1])(h, emb)
      encoder_features = (tuple(skips), h)
    else:   # Advance the names past the encoder's blocks.
      levels = len(self.channel_mults)
      for _ in range(levels * self.num_res_blocks + 2):
        next(res_ids)
      for _ in range(self._encoder_attention_blocks(x.shape[1]) + 1):
        next(attn_ids)
      for _ in range(levels):
        next(conv_ids)
    skips, h = list(encoder_features[0]), encoder_features[1]
    bottleneck = h
    if bottleneck_edit is not None:   # h-space editing: the decoder reads the edited h.
      h = bottleneck_edit(h).astype(h.dtype)

    for level, mult in reversed(list(enumerate(self.channel_mults))):
      for _ in range(self.num_res_blocks + 1):
        h = res(self.channels * mult)(jnp.concatenate([h, skips.pop()], axis=-1), emb)
        if h.shape[1] in self.attention_resolutions:
          h = attn()(h)
      if level > 0:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
        h = conv(h.shape[-1])(h)

    h = nn.silu(GroupNorm(num_groups(h.shape[-1], self.max_groups), dtype=self.dtype)(h))
    out = conv(self.out_channels, zero_init=True)(h)
    return out.astype(jnp.float32), bottleneck.astype(jnp.float32), encoder_features

  def _encoder_attention_blocks(self, height):
    """The attention blocks of the encoder (without the middle block's)."""
    heights = [height // 2 ** level for level in range(len(self.channel_mults))]
    return self.num_res_blocks * sum(h in self.attention_resolutions for h in heights)

  def _embedding(self, t, cond, batch_size):
    """(B, 4 * channels) embedding of time (and class): features -> Dense-SiLU-Dense."""
    t = broadcast_time(t, batch_size)
    if self.time_embedding == "sinusoidal":
      features = sinusoidal_embedding(t, self.channels)
    elif self.time_embedding == "fourier":
      features = fourier_embedding(t, self.channels, self.fourier_scale)
    else:
      raise ValueError(f"Unknown time_embedding {self.time_embedding!r}; valid: fourier, "
                       "sinusoidal.")
    dim = 4 * self.channels
    emb = nn.Dense(dim)(nn.silu(nn.Dense(dim)(features)))
    embedding = embed_condition(cond, self.num_classes, self.cond_dim, dim, batch_size)
    if embedding is not None:
      emb = emb + embedding
    return emb


@MODELS.register("unet")
def unet(data_shape: Sequence[int], *, channels=128, channel_mults=(1, 2, 2, 2),
         num_res_blocks=2, attention_resolutions=(16,), dropout=0.1,
         time_embedding="sinusoidal", fourier_scale=16.0, num_classes=0, num_heads=1,
         max_groups=32, remat=False, dtype="float32", cond_dim=0) -> Model:
  """Builds the U-Net for images of shape `data_shape` = (H, W, C).

  H and W must be divisible by 2^(len(channel_mults) - 1). `attention_resolutions` lists
  the feature-map heights at which attention follows each residual block (attention is
  always used in the middle block). Returns `Model(init, apply)`; see the module docstring
  for `apply(params, x, t, cond=None, *, dropout_key=None, return_bottleneck=False,
  bottleneck_edit=None, encoder_features=None, return_encoder_features=False)`.
  """
  check_condition(num_classes, cond_dim)
  if len(data_shape) != 3:
    raise ValueError(f"unet needs images of shape (H, W, C); got data_shape {data_shape}.")
  height, width, out_channels = data_shape
  factor = 2 ** (len(channel_mults) - 1)
  if height % factor or width % factor:
    raise ValueError(f"Image size {height}x{width} is not divisible by {factor}, as "
                     f"{len(channel_mults)} resolution levels need.")
  module = UNet(out_channels=out_channels, channels=channels,
                channel_mults=tuple(channel_mults), num_res_blocks=num_res_blocks,
                attention_resolutions=tuple(attention_resolutions), dropout=dropout,
                time_embedding=time_embedding, fourier_scale=fourier_scale,
                num_classes=num_classes, num_heads=num_heads, max_groups=max_groups,
                remat=remat, dtype=jnp.dtype(dtype), cond_dim=cond_dim)

  def init(key):
    x = jnp.zeros((1, *data_shape))
    cond = init_condition(num_classes, cond_dim)
    with fast_init_rng():
      return module.init(key, x, jnp.zeros(()), cond)["params"]

  def apply(params, x, t, cond=None, *, dropout_key: Optional[jax.Array] = None,
            return_bottleneck: bool = False,
            bottleneck_edit: Optional[Callable[[jax.Array], jax.Array]] = None,
            encoder_features=None, return_encoder_features: bool = False):
    rngs = {} if dropout_key is None else {"dropout": dropout_key}
    out, bottleneck, features = module.apply({"params": params}, x, t, cond,
                                             bottleneck_edit, encoder_features, rngs=rngs)
    if return_encoder_features:
      return out, features
    return (out, bottleneck) if return_bottleneck else out

  return Model(init, apply)
