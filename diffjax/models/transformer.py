"""A small diffusion transformer (DiT) for images, as a pure (init, apply) pair.

After Peebles & Xie, "Scalable Diffusion Models with Transformers" (ICCV 2023): the image
is cut into p x p patches, linearly embedded with fixed 2D sine-cosine position embeddings
(section 3.2, "Patchify"), processed by transformer blocks whose LayerNorms are modulated
by the conditioning vector c = embed(t) + embed(class) with "adaLN-Zero" (section 3.2,
"DiT block design": per-block shift, scale and a residual gate regressed from c, the gate
starting at zero so that every block starts as the identity), and mapped back to pixels
by a modulated linear decoder ("unpatchify").

  model = build_model("dit", (32, 32, 3), patch_size=2, hidden_dim=384, depth=12,
                      num_heads=6, num_classes=10)
  out = model.apply(params, x, t, cond=None)   # x: (B, H, W, C) -> (B, H, W, C)

As for the U-Net, label `num_classes` (also used when cond is None) is the "no class"
token of classifier-free guidance, and cond_dim > 0 conditions on (B, cond_dim + 1) arrays
(`diffjax.models.base.embed_condition`); `remat` and `dtype` have the same meaning.
"""
from typing import Any, Callable, NamedTuple, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.models.base import (MODELS, Model, broadcast_time, check_condition,
                                 embed_condition, init_condition, sinusoidal_embedding)
from diffjax.models.unet import fast_init_rng, multi_head_attention

_zeros = nn.initializers.zeros


def sincos_position_embedding(grid_h, grid_w, dim):
  """(grid_h * grid_w, dim) fixed 2D sine-cosine embeddings: half the features encode the
  row, half the column ("Attention Is All You Need", 3.5, applied per axis)."""
  if dim % 4:
    raise ValueError(f"hidden_dim must be divisible by 4; got {dim}.")
  freqs = 1.0 / 10_000 ** (np.arange(dim // 4) / (dim // 4))
  def axis(n):
    angles = np.arange(n)[:, None] * freqs[None]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # (n, dim / 2)
  rows, cols = axis(grid_h), axis(grid_w)
  grid = np.concatenate([np.repeat(rows, grid_w, axis=0), np.tile(cols, (grid_h, 1))], 1)
  return grid.astype(np.float32)


def _modulate(x, shift, scale):
  """adaLN: LayerNorm(x) (1 + scale) + shift; x: (B, N, D), shift, scale: (B, 1, D)."""
  x = nn.LayerNorm(epsilon=1e-6, use_scale=False, use_bias=False)(x)
  return x * (1 + scale) + shift


def rotary_embedding(x):
  """Rotary position embedding ("RoFormer", Su et al., eq. 34): x (B, N, heads, d) with d
  even; feature pairs (i, i + d/2) of position n rotate by n / 10000^(2i / d)."""
  n, d = x.shape[1], x.shape[-1]
  freqs = 1.0 / 10_000 ** (np.arange(d // 2) / (d // 2))
  angles = np.arange(n)[:, None] * freqs[None]  # (N, d / 2)
  cos = jnp.asarray(np.cos(angles), x.dtype)[None, :, None, :]
  sin = jnp.asarray(np.sin(angles), x.dtype)[None, :, None, :]
  x1, x2 = x[..., :d // 2], x[..., d // 2:]
  return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


def causal_attention(q, k, v):
  """softmax(q k^T / sqrt(d) + causal mask) v: position n attends to positions <= n.
  q, k, v: (B, N, heads, d) -> (B, N, heads, d); logits in float32."""
  n = q.shape[1]
  logits = jnp.einsum("bnhd,bmhd->bhnm", q, k, preferred_element_type=jnp.float32)
  logits = logits / np.sqrt(q.shape[-1]).astype(np.float32)
  logits = jnp.where(np.tril(np.ones((n, n), bool)), logits, -jnp.inf)
  weights = jax.nn.softmax(logits, -1).astype(v.dtype)
  return jnp.einsum("bhnm,bmhd->bnhd", weights, v, preferred_element_type=jnp.float32
                    ).astype(v.dtype)


class DiTBlock(nn.Module):
  """x: (B, N, D), c: (B, D) -> (B, N, D); attention and MLP, both adaLN-Zero modulated.

  rope: rotate queries and keys by their positions (token models); causal: attend only to
  earlier positions (the autoregressive baseline). Neither adds parameters.
  """
  num_heads: int
  mlp_ratio: float = 4.0
  dtype: Any = jnp.float32
  rope: bool = False
  causal: bool = False

  @nn.compact
  def __call__(self, x, c):
    b, n, d = x.shape
    mod = nn.Dense(6 * d, kernel_init=_zeros, dtype=self.dtype)(nn.silu(c))[:, None, :]
    shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(mod, 6, axis=-1)
    h = nn.Dense(3 * d, dtype=self.dtype)(_modulate(x, shift1, scale1))
    q, k, v = jnp.split(h.reshape(b, n, 3 * self.num_heads, -1), 3, axis=2)
    if self.rope:
      q, k = rotary_embedding(q), rotary_embedding(k)
    attend = causal_attention if self.causal else multi_head_attention
    h = attend(q, k, v).reshape(b, n, d)
    x = x + gate1 * nn.Dense(d, dtype=self.dtype)(h)
    h = nn.gelu(nn.Dense(int(self.mlp_ratio * d), dtype=self.dtype)(
        _modulate(x, shift2, scale2)))
    return x + gate2 * nn.Dense(d, dtype=self.dtype)(h)


class DiT(nn.Module):
  """The diffusion transformer; see the module docstring."""
  out_channels: int
  patch_size: int = 2
  hidden_dim: int = 384
  depth: int = 12
  num_heads: int = 6
  mlp_ratio: float = 4.0
  num_classes: int = 0
  remat: bool = False
  dtype: Any = jnp.float32
  cond_dim: int = 0

  @nn.compact
  def __call__(self, x, t, cond=None, *, stage="full", tokens=None, c=None):
    """stage "full": the network, (B, H, W, C) -> (B, H, W, C). The stages of an early-
    exit or pruned network (`dit_stages`) read the same parameter names: "embed" returns
    (tokens (B, N, D), c (B, D)) before the first block; "head" decodes `tokens` with the
    conditioning vector `c` into pixels shaped like x (t and cond unused)."""
    b, height, width, _ = x.shape
    p, d = self.patch_size, self.hidden_dim
    gh, gw = height // p, width // p
    if stage != "head":
      patches = x.reshape(b, gh, p, gw, p, -1).transpose(0, 1, 3, 2, 4, 5)
      h = nn.Dense(d, dtype=self.dtype)(patches.reshape(b, gh * gw, -1).astype(self.dtype))
      h = h + jnp.asarray(sincos_position_embedding(gh, gw, d), self.dtype)[None]

      t = broadcast_time(t, b)
      c = nn.Dense(d)(nn.silu(nn.Dense(d)(sinusoidal_embedding(t, 256))))
      embedding = embed_condition(cond, self.num_classes, self.cond_dim, d, b)
      if embedding is not None:
        c = c + embedding
      if stage == "embed":
        return h, c

      block_cls = nn.remat(DiTBlock) if self.remat else DiTBlock
      for i in range(self.depth):
        h = block_cls(self.num_heads, self.mlp_ratio, self.dtype, name=f"DiTBlock_{i}")(h, c)
    else:
      h = tokens

    # Named as the auto-names of the full network (blocks are DiTBlock_i), so that the
    # "head" stage alone finds the same parameters.
    shift, scale = jnp.split(nn.Dense(2 * d, kernel_init=_zeros, dtype=self.dtype,
                                      name="Dense_3")(nn.silu(c))[:, None, :], 2, -1)
    h = nn.Dense(p * p * self.out_channels, kernel_init=_zeros, dtype=self.dtype,
                 name="Dense_4")(_modulate(h, shift, scale))
    h = h.reshape(b, gh, gw, p, p, self.out_channels).transpose(0, 1, 3, 2, 4, 5)
    return h.reshape(b, height, width, self.out_channels).astype(jnp.float32)


HEAD_PARAMS = ("Dense_3", "Dense_4")  # The final adaLN modulation and linear decoder.


class Stages(NamedTuple):
  """A transformer of `DiTBlock`s as its stages (pure functions of its parameter tree), the
  contract early exits (`diffjax.acceleration.deediff`) build on:

    embed(params, x, t, cond) -> (tokens (B, N, D), c (B, D))   input embedding + the
                                                                 conditioning vector
    block(block_params, tokens, c) -> tokens                     one block; block_params
                                                                 = params[block_names[i]]
    head(head_params, x, tokens, c) -> output                    head_params: a dict with
                                                                 (at least) the keys
                                                                 head_params
    depth: the number of blocks; block_names: their parameter names, in order;
    head_params: the output layer's parameter names (the first an adaLN modulation Dense
      reading c, kernel (D, 2 D)).

  head(params, x, block(...block(embed(params, x, t, cond))...)) is apply(params, x, t,
  cond) (same parameters, same operations)."""
  embed: Callable
  block: Callable
  head: Callable
  depth: int
  block_names: Tuple[str, ...] = ()
  head_params: Tuple[str, ...] = HEAD_PARAMS


DiTStages = Stages   # The DiT's stages (`dit_stages`).


def _check_dit(data_shape, patch_size, hidden_dim, num_heads, num_classes, cond_dim):
  if len(data_shape) != 3:
    raise ValueError(f"dit needs images of shape (H, W, C); got data_shape {data_shape}.")
  height, width, _ = data_shape
  if height % patch_size or width % patch_size:
    raise ValueError(f"Image size {height}x{width} is not divisible by patch_size "
                     f"{patch_size}.")
  if hidden_dim % 4 or hidden_dim % num_heads:
    raise ValueError(f"hidden_dim {hidden_dim} must be divisible by 4 and by num_heads "
                     f"{num_heads}.")
  check_condition(num_classes, cond_dim)


def dit_stages(data_shape: Sequence[int], *, patch_size=2, hidden_dim=384, depth=12,
               num_heads=6, mlp_ratio=4.0, num_classes=0, cond_dim=0, remat=False,
               dtype="float32") -> DiTStages:
  """The stages of the DiT that `dit(data_shape, **same options)` builds (`DiTStages`)."""
  _check_dit(data_shape, patch_size, hidden_dim, num_heads, num_classes, cond_dim)
  del remat  # Stages run one block at a time.
  dtype = jnp.dtype(dtype)
  module = DiT(out_channels=data_shape[-1], patch_size=patch_size, hidden_dim=hidden_dim,
               depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
               num_classes=num_classes, dtype=dtype, cond_dim=cond_dim)
  block_module = DiTBlock(num_heads, mlp_ratio, dtype)

  def embed(params, x, t, cond=None):
    return module.apply({"params": params}, x, t, cond, stage="embed")

  def block(block_params, tokens, c):
    return block_module.apply({"params": block_params}, tokens, c)

  def head(head_params, x, tokens, c):
    head_params = {k: head_params[k] for k in HEAD_PARAMS}
    return module.apply({"params": head_params}, x, None, stage="head", tokens=tokens, c=c)

  return Stages(embed, block, head, depth, tuple(f"DiTBlock_{i}" for i in range(depth)),
                HEAD_PARAMS)


@MODELS.register("dit")
def dit(data_shape: Sequence[int], *, patch_size=2, hidden_dim=384, depth=12, num_heads=6,
        mlp_ratio=4.0, num_classes=0, cond_dim=0, remat=False, dtype="float32") -> Model:
  """Builds the DiT for images of shape `data_shape` = (H, W, C), H and W divisible by
  patch_size, hidden_dim divisible by 4 and by num_heads. Returns `Model(init, apply)`
  with apply(params, x, t, cond=None)."""
  _check_dit(data_shape, patch_size, hidden_dim, num_heads, num_classes, cond_dim)
  channels = data_shape[-1]
  module = DiT(out_channels=channels, patch_size=patch_size, hidden_dim=hidden_dim,
               depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
               num_classes=num_classes, remat=remat, dtype=jnp.dtype(dtype),
               cond_dim=cond_dim)

  def init(key):
    cond = init_condition(num_classes, cond_dim)
    with fast_init_rng():
      return module.init(key, jnp.zeros((1, *data_shape)), jnp.zeros(()), cond)["params"]

  def apply(params, x, t, cond=None, *, dropout_key=None):
    del dropout_key  # The DiT has no dropout.
    return module.apply({"params": params}, x, t, cond)

  return Model(init, apply)


dit.stages = dit_stages  # Declared: the network as `Stages` (early exits build on them).


def model_stages(name: str, data_shape: Sequence[int], **options) -> Stages:
  """The `Stages` of the registered model `name` built with `options` (as
  build_model(name, data_shape, **options) builds it), for a model whose factory declares
  them (`stages`); any other is refused in one line naming those that do."""
  factory = MODELS.get(name)
  build = getattr(factory, "stages", None)
  if build is None:
    staged = [n for n in MODELS.names() if getattr(MODELS.get(n), "stages", None)]
    raise ConfigError(f"model {name!r} does not declare its stages (embed, blocks, output "
                      f"layer); the networks that do: {', '.join(staged)}.")
  return build(data_shape, **options)
