"""A transformer over token sequences, as a pure (init, apply) pair, built from the DiT's
adaLN-Zero blocks (`diffjax.models.transformer.DiTBlock`).

Bidirectional by default, as the denoiser of masked diffusion ("Simple and Effective Masked
Diffusion Language Models", Sahoo et al., section 4: a DiT-style transformer with rotary
positions); `causal=True` gives the same network as an autoregressive baseline.

  model = build_model("token_transformer", (L,), vocab_size=V, mask_id=V, hidden_dim=256,
                      depth=6, num_heads=4)
  logits = model.apply(params, x, t, cond=None)    # x (B, N <= L) int -> (B, N, V) float32

Inputs are ids in [0, max(V, mask_id + 1)) (real tokens and the mask); outputs are logits
over the V real tokens only, never the mask (the SUBS parametrisation). The conditioning
vector c that modulates every block is embed(t) (`time_input=True`), or a learned constant
(`time_input=False`: RADD's time-free network, "Your Absorbing Discrete Diffusion Secretly
Models the Conditional Distributions of Clean Data", section 3), plus embed(class) when
`num_classes` > 0 (label `num_classes`, also used when cond is None, is the null class of
classifier-free guidance), or embed(array) for (B, cond_dim + 1) conditioning arrays
(`diffjax.models.base.embed_condition`). positions: "rope" (rotary, "RoFormer", Su et
al.) or "learned" (a trained (L, D) table). dtype "bfloat16" computes the blocks in
bfloat16; parameters and logits stay float32.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.models.base import (MODELS, Model, broadcast_time, check_condition,
                                 embed_condition, init_condition, sinusoidal_embedding)
from diffjax.models.transformer import DiTBlock, Stages, _modulate
from diffjax.models.unet import fast_init_rng

POSITIONS = ("rope", "learned")
_EMBED_STD = 0.02
_zeros = nn.initializers.zeros


class TokenTransformer(nn.Module):
  """See the module docstring."""
  vocab_size: int
  embedding_size: int
  max_length: int
  hidden_dim: int = 256
  depth: int = 6
  num_heads: int = 4
  mlp_ratio: float = 4.0
  positions: str = "rope"
  time_input: bool = True
  causal: bool = False
  num_classes: int = 0
  remat: bool = False
  dtype: Any = jnp.float32
  cond_dim: int = 0

  @nn.compact
  def __call__(self, x, t, cond=None, *, stage="full", tokens=None, c=None):
    """stage "full": the network, ids (B, N) -> logits (B, N, V). The stages of an early-
    exit network (`token_transformer_stages`) read the same parameter names: "embed"
    returns (tokens (B, N, D), c (B, D)) before the first block; "head" turns `tokens`
    into logits with the conditioning vector `c` (x, t and cond unused)."""
    d = self.hidden_dim
    if stage != "head":
      # Tokens and learned positions start at the same small scale (GPT-2's 0.02): larger
      # token embeddings drown the positional signal and the adaLN-Zero blocks' outputs,
      # which start at zero.
      b, n = x.shape
      h = nn.Embed(self.embedding_size, d,
                   embedding_init=nn.initializers.normal(_EMBED_STD))(x)
      if self.positions == "learned":
        table = self.param("position_embedding", nn.initializers.normal(_EMBED_STD),
                           (self.max_length, d))
        h = h + table[None, :n]
      h = h.astype(self.dtype)
      if self.time_input:
        c = nn.Dense(d)(nn.silu(nn.Dense(d)(sinusoidal_embedding(broadcast_time(t, b), 256))))
      else:
        # A learned constant, initialised away from zero: at c = 0, SiLU(c) = 0 and neither
        # c nor the zero-initialised modulation kernels would ever receive a gradient,
        # leaving the adaLN-Zero gates to grow through their biases alone (the blocks
        # stayed nearly off for hundreds of steps and masked diffusion at the unigram
        # level).
        c = jnp.broadcast_to(self.param("condition", nn.initializers.normal(1.0), (d,)),
                             (b, d))
      embedding = embed_condition(cond, self.num_classes, self.cond_dim, d, b)
      if embedding is not None:
        c = c + embedding
      if stage == "embed":
        return h, c
      block_cls = nn.remat(DiTBlock) if self.remat else DiTBlock
      for i in range(self.depth):
        h = block_cls(self.num_heads, self.mlp_ratio, self.dtype,
                      rope=self.positions == "rope", causal=self.causal,
                      name=f"DiTBlock_{i}")(h, c)
    else:
      h = tokens
    first, second = head_names(self.time_input)
    shift, scale = jnp.split(nn.Dense(2 * d, kernel_init=_zeros, dtype=self.dtype,
                                      name=first)(nn.silu(c))[:, None, :], 2, -1)
    logits = nn.Dense(self.vocab_size, kernel_init=_zeros, dtype=self.dtype, name=second)(
        _modulate(h, shift, scale))
    return logits.astype(jnp.float32)


def head_names(time_input):
  """The output layer's Dense names: the auto-names they have in the full network, after
  the time embedding's two Denses when there is one (so the parameter tree is unchanged
  and the "head" stage alone finds them)."""
  first = 2 if time_input else 0
  return f"Dense_{first}", f"Dense_{first + 1}"


def token_model_names():
  """The registered models that embed token ids (declared by `models_tokens`)."""
  return tuple(n for n in MODELS.names() if getattr(MODELS.get(n), "models_tokens", False))


@MODELS.register("token_transformer")
def token_transformer(data_shape, *, vocab_size: int, mask_id=None, hidden_dim=256, depth=6,
                      num_heads=4, mlp_ratio=4.0, positions="rope", time_input=True,
                      causal=False, num_classes=0, cond_dim=0, remat=False,
                      dtype="float32") -> Model:
  """Builds the token transformer for sequences of at most data_shape[0] tokens.

  Returns `Model(init, apply)`, apply(params, x, t, cond=None) -> (B, N, vocab_size) logits.
  """
  module, max_length = _module(data_shape, vocab_size, mask_id, hidden_dim, depth, num_heads,
                                mlp_ratio, positions, time_input, causal, num_classes,
                                cond_dim, remat, dtype)

  def init(key):
    cond = init_condition(num_classes, cond_dim)
    with fast_init_rng():
      return module.init(key, jnp.zeros((1, max_length), jnp.int32), jnp.zeros(()),
                         cond)["params"]

  def apply(params, x, t, cond=None, *, dropout_key=None):
    del dropout_key  # The token transformer has no dropout.
    _check_ids(x, max_length)
    return module.apply({"params": params}, x, t, cond)

  return Model(init, apply)


def _check_ids(x, max_length):
  if x.ndim != 2 or x.shape[1] > max_length:
    raise ConfigError(f"token_transformer takes (B, N <= {max_length}) token ids; got "
                      f"shape {x.shape}. Build the model with a larger max length.")


def token_transformer_stages(data_shape, *, vocab_size: int, mask_id=None, hidden_dim=256,
                             depth=6, num_heads=4, mlp_ratio=4.0, positions="rope",
                             time_input=True, causal=False, num_classes=0, cond_dim=0,
                             remat=False, dtype="float32") -> Stages:
  """The stages (`diffjax.models.transformer.Stages`) of the network that
  `token_transformer(data_shape, **same options)` builds: embed(params, ids, t, cond) ->
  (tokens, c), block, head(head_params, ids, tokens, c) -> logits (B, N, V)."""
  del remat  # Stages run one block at a time.
  module, max_length = _module(data_shape, vocab_size, mask_id, hidden_dim, depth, num_heads,
                                mlp_ratio, positions, time_input, causal, num_classes,
                                cond_dim, False, dtype)
  block_module = DiTBlock(module.num_heads, module.mlp_ratio, module.dtype,
                          rope=module.positions == "rope", causal=module.causal)
  names = head_names(time_input)

  def embed(params, x, t, cond=None):
    _check_ids(x, max_length)
    return module.apply({"params": params}, x, t, cond, stage="embed")

  def block(block_params, tokens, c):
    return block_module.apply({"params": block_params}, tokens, c)

  def head(head_params, x, tokens, c):
    return module.apply({"params": {k: head_params[k] for k in names}}, x, None,
                        stage="head", tokens=tokens, c=c)

  return Stages(embed, block, head, depth, tuple(f"DiTBlock_{i}" for i in range(depth)),
                names)


def _module(data_shape, vocab_size, mask_id, hidden_dim, depth, num_heads, mlp_ratio,
            positions, time_input, causal, num_classes, cond_dim, remat, dtype):
  """(TokenTransformer, max_length), the options checked."""
  check_condition(num_classes, cond_dim)
  if len(data_shape) != 1:
    raise ConfigError(f"token_transformer needs data_shape (max_length,); got {data_shape}.")
  max_length = int(data_shape[0])
  mask_id = vocab_size if mask_id is None else int(mask_id)
  if positions not in POSITIONS:
    raise ConfigError(f"Unknown positions {positions!r}; valid: {POSITIONS}.")
  head_dim, remainder = divmod(hidden_dim, num_heads)
  if remainder or (positions == "rope" and head_dim % 2):
    raise ConfigError(f"hidden_dim {hidden_dim} must be divisible by num_heads {num_heads} "
                      "(into an even head size for rope).")
  module = TokenTransformer(vocab_size=vocab_size,
                            embedding_size=max(vocab_size, mask_id + 1),
                            max_length=max_length, hidden_dim=hidden_dim, depth=depth,
                            num_heads=num_heads, mlp_ratio=mlp_ratio, positions=positions,
                            time_input=time_input, causal=causal, num_classes=num_classes,
                            remat=remat, dtype=jnp.dtype(dtype), cond_dim=cond_dim)
  return module, max_length


token_transformer.models_tokens = True
token_transformer.stages = token_transformer_stages  # Declared (`model_stages`).
