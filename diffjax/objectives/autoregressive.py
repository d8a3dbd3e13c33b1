"""Next-token prediction with a causal model: the autoregressive baseline that masked
diffusion papers compare with (e.g. "Simple and Effective Masked Diffusion Language Models",
Sahoo et al., table 1).

The causal network reads x shifted right by one position behind a begin-of-sequence id
(the mask id of the masking path serves, as it is no real token), so that its output at
position i predicts token i from tokens < i; the loss is the exact negative
log-likelihood, in nats per token. Its fields give, for a partially generated x (masks in
unknown positions), `next_token_logits` whose position i is p(x_i | x_<i), valid where
every position before i is known: the "autoregressive" token sampler, which fills
positions left to right, reads them; samplers that reveal positions in any order need
`logits` and refuse these fields.
"""
import jax.numpy as jnp

from diffjax.core import Fields
from diffjax.objectives.base import OBJECTIVES
from diffjax.objectives.masked import (TokenObjective, require_masking_path, token_objective,
                                       token_cross_entropy)


def shift_right(x, bos_id: int):
  """(B, L) -> (B, L): [bos, x_0, ..., x_{L-2}]."""
  return jnp.concatenate([jnp.full(x.shape[:1] + (1,), bos_id, x.dtype), x[:, :-1]], 1)


def sequence_nll(apply_fn, params, x1, bos_id: int, cond=None):
  """(B,) exact negative log-likelihoods (nats) of x1 (B, L) under the causal model."""
  logits = apply_fn(params, shift_right(x1, bos_id), jnp.zeros(()), cond)
  return jnp.sum(token_cross_entropy(logits, x1), -1)


@OBJECTIVES.register("autoregressive")
@token_objective
def autoregressive(path) -> TokenObjective:
  """Next-token cross-entropy with a causal network (`TokenObjective.causal`); `path` (a
  `MaskingPath`) supplies the begin-of-sequence id."""
  require_masking_path(path, "The autoregressive objective")
  bos_id = path.mask_id

  def loss(apply_fn, params, key, x0, x1, cond=None):
    del key, x0
    per_token = jnp.mean(sequence_nll(apply_fn, params, x1, bos_id, cond)) / x1.shape[1]
    return per_token, {"nll_per_token": per_token}

  def fields(apply_fn, params, cond=None):
    return Fields.of(next_token_logits=lambda x, t: apply_fn(
        params, shift_right(x, bos_id), t, cond))

  def exact_nll(apply_fn, params, key, x1, cond=None, num_samples=1):
    del key, num_samples  # Exact: nothing to average.
    return sequence_nll(apply_fn, params, x1, bos_id, cond)

  return TokenObjective(loss, fields, exact_nll, causal=True)
