"""diffusers' `UNet2DModel` in flax, as a pure (init, apply) pair on diffjax time.

The network of "Denoising Diffusion Probabilistic Models" (Ho et al., 2020, Appendix B) as
diffusers builds it from a config: conv_in; per resolution a down block of
`layers_per_block` residual blocks (GroupNorm-SiLU-conv, + projected time embedding,
GroupNorm-SiLU-dropout-conv, 1x1 shortcut when the width changes) each followed by
self-attention in an `AttnDownBlock2D`, and a strided 3x3 convolution except at the last
resolution; a middle block (residual, attention, residual); up blocks of
`layers_per_block + 1` residual blocks reading the down path's activations, attention in
an `AttnUpBlock2D`, nearest-neighbour x2 + conv upsampling except at the last; GroupNorm,
SiLU, conv_out. The time embedding is diffusers' sinusoidal `Timesteps` then a
Linear-SiLU-Linear MLP; a class embedding (an nn.Embed of num_classes + 1 rows) is added
to it. Parameters are named as diffusers names them (`diffjax.models.diffusers_layers`).

  model = build_model("diffusers_unet", (32, 32, 3), block_out_channels=(128, 256, 256, 256),
                      down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D",
                                        "DownBlock2D"), ...)       # diffusers' config keys
  out = model.apply(params, x, t, cond=None)        # x: (B, H, W, C), t in [0, 1] -> (B, H, W, C)
  out, h = model.apply(params, x, t, return_bottleneck=True)        # h: the middle block's output
  out = model.apply(params, x, t, bottleneck_edit=lambda h: h + d)  # h-space editing

Time: the network reads diffusers' timestep k(t) = T (1 - t) - 1 of the discrete DDPM path
(`diffjax.paths.ddpm`, T = num_train_timesteps), integer on the training grid. Classes:
num_classes = K > 0 gives labels [0, K], K (also for cond None) the null class of
condition dropout; in diffusers' terms num_class_embeds = K + 1 and the last row is the
null class. `full_output=True` returns every output channel when out_channels is twice
the image's (a learned variance), else the first C are returned. dtype="bfloat16"
computes convolutions, dense layers and attention in bfloat16 (GroupNorm statistics and
the output in float32); remat=True rematerialises every residual and attention block.

Supported config values (others are refused with a ConfigError): down blocks DownBlock2D /
AttnDownBlock2D, up blocks UpBlock2D / AttnUpBlock2D, mid block UNetMidBlock2D or None,
positional time embedding, conv up/downsampling, resnet_time_scale_shift default /
scale_shift, act_fn silu, class embedding by label (class_embed_type None).
"""
import dataclasses
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.base import MODELS, Model, check_condition
from diffjax.models.diffusers_layers import (TimestepMLP, check_activation, image_channels,
                                             timestep_embedding, timestep_model)
from diffjax.models.unet import GroupNorm, multi_head_attention

DOWN_BLOCKS = ("DownBlock2D", "AttnDownBlock2D")
UP_BLOCKS = ("UpBlock2D", "AttnUpBlock2D")
MID_BLOCKS = ("UNetMidBlock2D", None)
TIME_SCALE_SHIFTS = ("default", "scale_shift")


def _conv(features, dtype, name, kernel=3, stride=1, padding=((1, 1), (1, 1))):
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                 dtype=dtype, name=name)


class ResnetBlock(nn.Module):
  """diffusers' ResnetBlock2D: x (B, H, W, C_in), emb (B, E) -> (B, H, W, out_channels)."""
  out_channels: int
  groups: int
  eps: float
  dropout: float = 0.0
  time_scale_shift: str = "default"
  output_scale: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, emb):
    c = self.out_channels
    norm = lambda name: GroupNorm(self.groups, self.eps, self.dtype, name=name)
    h = _conv(c, self.dtype, "conv1")(nn.silu(norm("norm1")(x)))
    shift = self.time_scale_shift == "scale_shift"
    temb = nn.Dense(2 * c if shift else c, dtype=self.dtype, name="time_emb_proj")(
        nn.silu(emb))[:, None, None, :]
    if shift:
      scale, offset = jnp.split(temb, 2, axis=-1)
      h = norm("norm2")(h) * (1 + scale) + offset
    else:
      h = norm("norm2")(h + temb)
    h = nn.Dropout(self.dropout, deterministic=not self.has_rng("dropout"))(nn.silu(h))
    h = _conv(c, self.dtype, "conv2")(h)
    if x.shape[-1] != c:
      x = _conv(c, self.dtype, "conv_shortcut", kernel=1, padding="VALID")(x)
    return (x + h) / self.output_scale


class AttentionBlock(nn.Module):
  """diffusers' spatial Attention (its former AttentionBlock): optional GroupNorm, then
  multi-head self-attention over the H * W positions, residual, / output_scale.
  x: (B, H, W, C) -> same; heads = C / head_dim."""
  head_dim: Optional[int]
  groups: Optional[int]
  eps: float
  output_scale: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, height, width, c = x.shape
    head_dim = c if self.head_dim is None else self.head_dim
    h = x if self.groups is None else GroupNorm(self.groups, self.eps, self.dtype,
                                                name="group_norm")(x)
    h = h.reshape(b, height * width, c)
    heads = c // head_dim
    q, k, v = (nn.Dense(c, dtype=self.dtype, name=name)(h).reshape(b, -1, heads, head_dim)
               for name in ("to_q", "to_k", "to_v"))
    h = multi_head_attention(q, k, v).reshape(b, height * width, c)
    h = nn.Dense(c, dtype=self.dtype, name="to_out_0")(h)
    return (h.reshape(x.shape) + x) / self.output_scale


@dataclasses.dataclass(frozen=True)
class BlockSettings:
  """What every residual and attention block of one UNet shares."""
  groups: int
  eps: float
  dropout: float
  time_scale_shift: str
  head_dim: Optional[int]
  remat: bool
  dtype: Any

  def resnet(self, channels, name, scale=1.0):
    cls = nn.remat(ResnetBlock) if self.remat else ResnetBlock
    return cls(channels, self.groups, self.eps, self.dropout, self.time_scale_shift, scale,
               self.dtype, name=name)

  def attention(self, name, groups="same", scale=1.0):
    cls = nn.remat(AttentionBlock) if self.remat else AttentionBlock
    return cls(self.head_dim, self.groups if groups == "same" else groups, self.eps, scale,
               self.dtype, name=name)


class Resample(nn.Module):
  """A down- or upsampler holding one 3x3 convolution `conv`: stride 2 with diffusers'
  padding (p > 0: p on every side; 0: one row and column after), or nearest x2 then conv."""
  down: bool
  padding: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h):
    c = h.shape[-1]
    if self.down:
      p = self.padding
      pads = ((p, p), (p, p)) if p else ((0, 1), (0, 1))
      return _conv(c, self.dtype, "conv", stride=2, padding=pads)(h)
    h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
    return _conv(c, self.dtype, "conv")(h)


class DownBlock(nn.Module):
  """DownBlock2D / AttnDownBlock2D: (h, emb) -> (h, the activations the up path reads)."""
  settings: BlockSettings
  channels: int
  num_layers: int
  attention: bool
  downsample: bool
  padding: int

  @nn.compact
  def __call__(self, h, emb):
    outputs = []
    for j in range(self.num_layers):
      h = self.settings.resnet(self.channels, f"resnets_{j}")(h, emb)
      if self.attention:
        h = self.settings.attention(f"attentions_{j}")(h)
      outputs.append(h)
    if self.downsample:
      h = Resample(True, self.padding, self.settings.dtype, name="downsamplers_0")(h)
      outputs.append(h)
    return h, outputs


class MidBlock(nn.Module):
  """UNetMidBlock2D: residual, attention (optional), residual, each / scale."""
  settings: BlockSettings
  attention: bool
  attention_groups: Optional[int]
  scale: float

  @nn.compact
  def __call__(self, h, emb):
    c = h.shape[-1]
    h = self.settings.resnet(c, "resnets_0", self.scale)(h, emb)
    if self.attention:
      h = self.settings.attention("attentions_0", self.attention_groups, self.scale)(h)
    return self.settings.resnet(c, "resnets_1", self.scale)(h, emb)


class UpBlock(nn.Module):
  """UpBlock2D / AttnUpBlock2D: each residual block reads h joined with one skip (the
  last first)."""
  settings: BlockSettings
  channels: int
  num_layers: int
  attention: bool
  upsample: bool

  @nn.compact
  def __call__(self, h, skips, emb):
    for j in range(self.num_layers):
      h = self.settings.resnet(self.channels, f"resnets_{j}")(
          jnp.concatenate([h, skips[-1 - j]], axis=-1), emb)
      if self.attention:
        h = self.settings.attention(f"attentions_{j}")(h)
    if self.upsample:
      h = Resample(False, dtype=self.settings.dtype, name="upsamplers_0")(h)
    return h


class UNet2D(nn.Module):
  """The network on diffusers' timesteps: (x, timesteps (B,), cond) -> (out, bottleneck)."""
  out_channels: int
  block_out_channels: Sequence[int]
  down_block_types: Sequence[str]
  up_block_types: Sequence[str]
  mid_block_type: Optional[str]
  layers_per_block: int
  attention_head_dim: Optional[int]
  norm_num_groups: int
  attn_norm_num_groups: Optional[int]
  norm_eps: float
  time_embedding_dim: Optional[int]
  flip_sin_to_cos: bool
  freq_shift: float
  downsample_padding: int
  mid_block_scale_factor: float
  resnet_time_scale_shift: str
  add_attention: bool
  center_input_sample: bool
  dropout: float
  num_classes: int
  remat: bool
  dtype: Any

  @nn.compact
  def __call__(self, x, timesteps, cond=None, bottleneck_edit=None):
    channels = tuple(self.block_out_channels)
    settings = BlockSettings(self.norm_num_groups, self.norm_eps, self.dropout,
                             self.resnet_time_scale_shift, self.attention_head_dim,
                             self.remat, self.dtype)
    emb = self._embedding(timesteps, cond, x.shape[0])
    if self.center_input_sample:
      x = 2 * x - 1.0
    h = _conv(channels[0], self.dtype, "conv_in")(x.astype(self.dtype))
    skips = [h]
    last = len(channels) - 1
    for i, (kind, c) in enumerate(zip(self.down_block_types, channels)):
      h, outputs = DownBlock(settings, c, self.layers_per_block, kind == "AttnDownBlock2D",
                             i < last, self.downsample_padding, name=f"down_blocks_{i}")(h, emb)
      skips.extend(outputs)

    if self.mid_block_type is not None:
      groups = self.attn_norm_num_groups
      if groups is None and self.resnet_time_scale_shift == "default":
        groups = self.norm_num_groups
      h = MidBlock(settings, self.add_attention, groups, self.mid_block_scale_factor,
                   name="mid_block")(h, emb)
    bottleneck = h
    if bottleneck_edit is not None:   # h-space editing: the decoder reads the edited h.
      h = bottleneck_edit(h).astype(h.dtype)

    layers = self.layers_per_block + 1
    for i, (kind, c) in enumerate(zip(self.up_block_types, channels[::-1])):
      block_skips, skips = skips[-layers:], skips[:-layers]
      h = UpBlock(settings, c, layers, kind == "AttnUpBlock2D", i < last,
                  name=f"up_blocks_{i}")(h, block_skips, emb)

    h = nn.silu(GroupNorm(self.norm_num_groups, self.norm_eps, self.dtype,
                          name="conv_norm_out")(h))
    out = _conv(self.out_channels, self.dtype, "conv_out")(h)
    return out.astype(jnp.float32), bottleneck.astype(jnp.float32)

  def _embedding(self, timesteps, cond, batch_size):
    channels = self.block_out_channels[0]
    dim = self.time_embedding_dim or 4 * channels
    features = timestep_embedding(timesteps, channels, self.flip_sin_to_cos, self.freq_shift)
    emb = TimestepMLP(dim, name="time_embedding")(features)
    if self.num_classes:
      if cond is None:
        cond = jnp.full((batch_size,), self.num_classes, jnp.int32)
      emb = emb + nn.Embed(self.num_classes + 1, dim, name="class_embedding")(cond)
    return emb


def check_unet_config(block_out_channels, down_block_types, up_block_types,
                      mid_block_type, time_embedding_type, class_embed_type,
                      resnet_time_scale_shift, downsample_type, upsample_type, act_fn,
                      norm_num_groups, attention_head_dim):
  """ConfigError naming the first value of a UNet2DModel config diffjax does not build."""
  for kinds, valid, key in ((down_block_types, DOWN_BLOCKS, "down_block_types"),
                            (up_block_types, UP_BLOCKS, "up_block_types")):
    for kind in kinds:
      if kind not in valid:
        raise ConfigError(f"{key} holds the unsupported block type {kind!r}; valid: "
                          f"{', '.join(valid)}.")
  if not len(block_out_channels) == len(down_block_types) == len(up_block_types):
    raise ConfigError(f"block_out_channels {tuple(block_out_channels)}, down_block_types and "
                      "up_block_types must have the same length.")
  for value, valid, key in (
      (mid_block_type, MID_BLOCKS, "mid_block_type"),
      (time_embedding_type, ("positional",), "time_embedding_type"),
      (class_embed_type, (None,), "class_embed_type"),
      (resnet_time_scale_shift, TIME_SCALE_SHIFTS, "resnet_time_scale_shift"),
      (downsample_type, ("conv",), "downsample_type"),
      (upsample_type, ("conv",), "upsample_type")):
    if value not in valid:
      raise ConfigError(f"{key}={value!r} is not supported; valid: "
                        f"{', '.join(str(v) for v in valid)}.")
  check_activation(act_fn)
  for c in block_out_channels:
    for divisor, key in ((norm_num_groups, "norm_num_groups"),
                         (attention_head_dim, "attention_head_dim")):
      if divisor and c % divisor:
        raise ConfigError(f"block_out_channels {tuple(block_out_channels)} must be "
                          f"divisible by {key}={divisor}.")


@MODELS.register("diffusers_unet")
def diffusers_unet(data_shape: Sequence[int], *, out_channels=None,
                   block_out_channels=(224, 448, 672, 896), layers_per_block=2,
                   down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D",
                                     "AttnDownBlock2D"),
                   up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D",
                                   "UpBlock2D"),
                   mid_block_type="UNetMidBlock2D", attention_head_dim=8,
                   norm_num_groups=32, attn_norm_num_groups=None, norm_eps=1e-5,
                   time_embedding_type="positional", time_embedding_dim=None,
                   flip_sin_to_cos=True, freq_shift=0, downsample_padding=1,
                   downsample_type="conv", upsample_type="conv", mid_block_scale_factor=1.0,
                   resnet_time_scale_shift="default", add_attention=True,
                   center_input_sample=False, act_fn="silu", dropout=0.0,
                   class_embed_type=None, num_classes=0, num_train_timesteps=1000,
                   remat=False, dtype="float32") -> Model:
  """Builds the UNet2DModel for images of shape data_shape = (H, W, C) with H, W divisible
  by 2^(levels - 1). Keyword options are diffusers' UNet2DModel config keys with its
  defaults, except num_classes (num_class_embeds - 1, module docstring),
  num_train_timesteps (the time map), remat and dtype; see the module docstring for apply."""
  check_condition(num_classes, 0)
  check_unet_config(block_out_channels, down_block_types, up_block_types, mid_block_type,
                    time_embedding_type, class_embed_type, resnet_time_scale_shift,
                    downsample_type, upsample_type, act_fn, norm_num_groups,
                    attention_head_dim)
  out_channels = image_channels(data_shape, out_channels, "diffusers_unet")
  height, width, _ = data_shape
  factor = 2 ** (len(block_out_channels) - 1)
  if height % factor or width % factor:
    raise ConfigError(f"Image size {height}x{width} is not divisible by {factor}, as "
                      f"{len(block_out_channels)} resolution levels need.")
  module = UNet2D(
      out_channels=out_channels, block_out_channels=tuple(block_out_channels),
      down_block_types=tuple(down_block_types), up_block_types=tuple(up_block_types),
      mid_block_type=mid_block_type, layers_per_block=layers_per_block,
      attention_head_dim=attention_head_dim, norm_num_groups=norm_num_groups,
      attn_norm_num_groups=attn_norm_num_groups, norm_eps=norm_eps,
      time_embedding_dim=time_embedding_dim, flip_sin_to_cos=flip_sin_to_cos,
      freq_shift=freq_shift, downsample_padding=downsample_padding,
      mid_block_scale_factor=mid_block_scale_factor,
      resnet_time_scale_shift=resnet_time_scale_shift, add_attention=add_attention,
      center_input_sample=center_input_sample, dropout=dropout, num_classes=num_classes,
      remat=remat, dtype=jnp.dtype(dtype))
  return timestep_model(module, tuple(data_shape), out_channels, num_classes,
                        num_train_timesteps, bottleneck=True)
