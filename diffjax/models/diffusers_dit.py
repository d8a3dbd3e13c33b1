"""diffusers' `DiTTransformer2DModel` in flax, as a pure (init, apply) pair on diffjax time.

"Scalable Diffusion Models with Transformers" (Peebles & Xie, ICCV 2023) as diffusers
builds it: a p x p strided convolution embeds patches, fixed 2D sine-cosine position
embeddings are added (diffusers' `get_2d_sincos_pos_embed`: the first half of the features
encodes the column, the second half the row), then `num_layers` blocks with adaLN-Zero
(section 3.2: LayerNorms without affine parameters, shift / scale / gate regressed from
the conditioning c = MLP(timestep features) + label embedding; in diffusers every block
owns its own copy of that embedding, `norm1.emb`), and a modulated linear decoder whose
shift and scale come from block 0's conditioning. The label embedding has num_classes + 1
rows, the last the null class of classifier-free guidance (its "class dropout").
`out_channels` = 2 C is the learned-sigma output (Improved DDPM, Nichol & Dhariwal, Sec.
3.1): apply returns the first C channels (the noise prediction), all of them with
full_output=True.

  model = build_model("diffusers_dit", (32, 32, 4), num_attention_heads=16,
                      attention_head_dim=72, num_layers=28, patch_size=2,
                      num_classes=1000, out_channels=8)
  out = model.apply(params, x, t, cond=labels)     # x: (B, H, W, C), t in [0, 1]

Time is diffusers' timestep k(t) of the discrete DDPM path (`diffjax.paths.ddpm`), as for
`diffusers_unet`. dtype and remat as the other models. Supported: norm_type
ada_norm_zero, activation_fn gelu-approximate (others are refused).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.models.base import MODELS, Model, check_condition
from diffjax.models.diffusers_layers import (SelfAttention, TimestepMLP, image_channels,
                                             timestep_embedding, timestep_model)

_zeros = nn.initializers.zeros


def patch_position_embedding(grid_h, grid_w, dim):
  """(grid_h * grid_w, dim) float32: [sincos(column), sincos(row)] per token (row-major),
  sincos(p) = [sin(p w_i), cos(p w_i)], w_i = 10000^(-i / (dim / 4)), i < dim / 4."""
  freqs = 1.0 / 10_000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
  rows, cols = np.meshgrid(np.arange(grid_h, dtype=np.float64),
                           np.arange(grid_w, dtype=np.float64), indexing="ij")
  def sincos(position):
    angles = position.reshape(-1)[:, None] * freqs[None]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
  return np.concatenate([sincos(cols), sincos(rows)], axis=1).astype(np.float32)


class LabelTimeEmbedding(nn.Module):
  """diffusers' CombinedTimestepLabelEmbeddings: MLP(timestep features (256, cos first,
  freq_shift 1)) + label embedding (num_classes + 1 rows). (B,), (B,) -> (B, dim)."""
  dim: int
  num_classes: int

  @nn.compact
  def __call__(self, timesteps, labels):
    features = timestep_embedding(timesteps, 256, flip_sin_to_cos=True, freq_shift=1)
    emb = TimestepMLP(self.dim, name="timestep_embedder")(features)
    return emb + _LabelTable(self.num_classes, self.dim, name="class_embedder")(labels)


class _LabelTable(nn.Module):
  """The label table under diffusers' name class_embedder.embedding_table."""
  num_classes: int
  dim: int

  @nn.compact
  def __call__(self, labels):
    return nn.Embed(self.num_classes + 1, self.dim, name="embedding_table")(labels)


def _layer_norm(eps, affine, name=None):
  return nn.LayerNorm(epsilon=eps, use_scale=affine, use_bias=affine, name=name)


class TransformerBlock(nn.Module):
  """diffusers' BasicTransformerBlock with ada_norm_zero: x (B, N, D), timesteps (B,),
  labels (B,) -> (B, N, D) and the block's conditioning c (B, D)."""
  num_heads: int
  num_classes: int
  attention_bias: bool
  norm_eps: float
  norm_elementwise_affine: bool
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, timesteps, labels):
    d = x.shape[-1]
    c, mods = _Norm1(d, self.num_classes, self.dtype, name="norm1")(timesteps, labels)
    shift1, scale1, gate1, shift2, scale2, gate2 = (v[:, None, :] for v in mods)
    h = _layer_norm(1e-6, False)(x) * (1 + scale1) + shift1
    h = SelfAttention(self.num_heads, self.attention_bias, self.dtype, name="attn1")(h)
    x = x + gate1 * self._dropout(h)
    h = _layer_norm(self.norm_eps, self.norm_elementwise_affine, "norm3")(x)
    h = _FeedForward(self.dtype, name="ff")(h * (1 + scale2) + shift2, self._dropout)
    return x + gate2 * h, c

  def _dropout(self, h):
    return nn.Dropout(self.dropout, deterministic=not self.has_rng("dropout"))(h)


class _Norm1(nn.Module):
  """AdaLayerNormZero's conditioning part: c = emb(timesteps, labels) (each block owns a
  copy) and linear(SiLU(c)) split into shift, scale, gate (attention) and shift, scale,
  gate (MLP), each (B, D)."""
  dim: int
  num_classes: int
  dtype: Any

  @nn.compact
  def __call__(self, timesteps, labels):
    c = LabelTimeEmbedding(self.dim, self.num_classes, name="emb")(timesteps, labels)
    mod = nn.Dense(6 * self.dim, dtype=self.dtype, kernel_init=_zeros, name="linear")(
        nn.silu(c))
    return c, jnp.split(mod, 6, axis=-1)


class _FeedForward(nn.Module):
  """net.0.proj (D -> 4D) with tanh-approximate GELU, dropout, net.2 (4D -> D)."""
  dtype: Any

  @nn.compact
  def __call__(self, h, dropout):
    d = h.shape[-1]
    h = nn.gelu(_Projection(4 * d, self.dtype, name="net_0")(h), approximate=True)
    return nn.Dense(d, dtype=self.dtype, name="net_2")(dropout(h))


class _Projection(nn.Module):
  features: int
  dtype: Any

  @nn.compact
  def __call__(self, h):
    return nn.Dense(self.features, dtype=self.dtype, name="proj")(h)


class _PatchEmbed(nn.Module):
  """pos_embed.proj: a p x p stride-p convolution; (B, H, W, C) -> (B, N, D)."""
  dim: int
  patch_size: int
  dtype: Any

  @nn.compact
  def __call__(self, x):
    p = self.patch_size
    h = nn.Conv(self.dim, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
                name="proj")(x)
    return h.reshape(h.shape[0], -1, self.dim)


class DiT2D(nn.Module):
  """The network on diffusers' timesteps: (x, timesteps (B,), labels (B,) or None) -> out."""
  out_channels: int
  num_attention_heads: int
  attention_head_dim: int
  num_layers: int
  patch_size: int
  num_classes: int
  attention_bias: bool
  norm_eps: float
  norm_elementwise_affine: bool
  dropout: float
  remat: bool
  dtype: Any

  @nn.compact
  def __call__(self, x, timesteps, labels=None):
    b, height, width, _ = x.shape
    p, d = self.patch_size, self.num_attention_heads * self.attention_head_dim
    gh, gw = height // p, width // p
    if labels is None:
      labels = jnp.full((b,), self.num_classes, jnp.int32)
    h = _PatchEmbed(d, p, self.dtype, name="pos_embed")(x.astype(self.dtype))
    h = h + jnp.asarray(patch_position_embedding(gh, gw, d), h.dtype)[None]
    block_cls = nn.remat(TransformerBlock) if self.remat else TransformerBlock
    conditionings = []
    for i in range(self.num_layers):
      h, c = block_cls(self.num_attention_heads, self.num_classes, self.attention_bias,
                       self.norm_eps, self.norm_elementwise_affine, self.dropout,
                       self.dtype, name=f"transformer_blocks_{i}")(h, timesteps, labels)
      conditionings.append(c)
    c = conditionings[0]   # diffusers' decoder reads block 0's conditioning.
    shift, scale = jnp.split(nn.Dense(2 * d, dtype=self.dtype, kernel_init=_zeros,
                                      name="proj_out_1")(nn.silu(c))[:, None, :], 2, -1)
    h = _layer_norm(1e-6, False)(h) * (1 + scale) + shift
    h = nn.Dense(p * p * self.out_channels, dtype=self.dtype, kernel_init=_zeros,
                 name="proj_out_2")(h)
    h = h.reshape(b, gh, gw, p, p, self.out_channels).transpose(0, 1, 3, 2, 4, 5)
    return h.reshape(b, height, width, self.out_channels).astype(jnp.float32)


@MODELS.register("diffusers_dit")
def diffusers_dit(data_shape: Sequence[int], *, num_attention_heads=16,
                  attention_head_dim=72, out_channels=None, num_layers=28, dropout=0.0,
                  norm_num_groups=32, attention_bias=True, patch_size=2,
                  activation_fn="gelu-approximate", num_classes=1000,
                  upcast_attention=False, norm_type="ada_norm_zero",
                  norm_elementwise_affine=False, norm_eps=1e-5, num_train_timesteps=1000,
                  remat=False, dtype="float32") -> Model:
  """Builds the DiTTransformer2DModel for images (H, W, C), H and W divisible by
  patch_size. Keyword options are diffusers' config keys with its defaults, except
  num_classes (num_embeds_ada_norm), num_train_timesteps (the time map), remat and dtype
  (norm_num_groups and upcast_attention change nothing in float32, as in diffusers)."""
  del norm_num_groups, upcast_attention
  if norm_type != "ada_norm_zero":
    raise ConfigError(f"norm_type={norm_type!r} is not supported; valid: ada_norm_zero.")
  if activation_fn != "gelu-approximate":
    raise ConfigError(f"activation_fn={activation_fn!r} is not supported; valid: "
                      "gelu-approximate.")
  check_condition(num_classes, 0)
  if not num_classes:
    raise ConfigError("diffusers' DiT is class-conditional: num_classes "
                      "(num_embeds_ada_norm) must be > 0.")
  out_channels = image_channels(data_shape, out_channels, "diffusers_dit")
  height, width, _ = data_shape
  if height % patch_size or width % patch_size:
    raise ConfigError(f"Image size {height}x{width} is not divisible by patch_size "
                      f"{patch_size}.")
  module = DiT2D(out_channels=out_channels, num_attention_heads=num_attention_heads,
                 attention_head_dim=attention_head_dim, num_layers=num_layers,
                 patch_size=patch_size, num_classes=num_classes,
                 attention_bias=attention_bias, norm_eps=norm_eps,
                 norm_elementwise_affine=norm_elementwise_affine, dropout=dropout,
                 remat=remat, dtype=jnp.dtype(dtype))
  return timestep_model(module, tuple(data_shape), out_channels, num_classes,
                        num_train_timesteps, bottleneck=False)
