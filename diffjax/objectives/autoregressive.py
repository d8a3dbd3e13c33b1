"""Next-token prediction with a causal model: the autoregressive baseline that masked
diffusion papers compare with (e.g. "Simple and Effective Masked Diffusion Language Models",
Sahoo et al., table 1).

The causal network reads x shifted right by one position behind a begin-of-sequence id
(the mask id of the masking path serves, as it is no real token), so that its output at
position i predicts token i from tokens < i; the loss is the exact negative
log-likelihood, in nats per token. Its fields give, for a partially generated x (masks in
unknown positions), logits whose position i is p(x_i | x_<i): the "autoregressive" token
sampler fills positions left to right.
"""
import jax.numpy as jnp

from diffjax.core import Fields
from diffjax.objectives.base import OBJECTIVES, Objective
from diffjax.objectives.masked import token_cross_entropy


def shift_right(x, bos_id: int):
  """(B, L) -> (B, L): [bos, x_0, ..., x_{L-2}]."""
  return jnp.concatenate([jnp.full(x.shape[:1] + (1,), bos_id, x.dtype), x[:, :-1]], 1)


def sequence_nll(apply_fn, params, x1, bos_id: int, cond=None):
  """(B,) exact negative log-likelihoods (nats) of x1 (B, L) under the causal model."""
  logits = apply_fn(params, shift_right(x1, bos_id), jnp.zeros(()), cond)
  return jnp.sum(token_cross_entropy(logits, x1), -1)


@OBJECTIVES.register("autoregressive")
def autoregressive(path) -> Objective:
  """Next-token cross-entropy; `path` (a `MaskingPath`) supplies the begin-of-sequence id."""
  bos_id = path.mask_id

  def loss(apply_fn, params, key, x0, x1, cond=None):
    del key, x0
    per_token = jnp.mean(sequence_nll(apply_fn, params, x1, bos_id, cond)) / x1.shape[1]
    return per_token, {"nll_per_token": per_token}

  def fields(apply_fn, params, cond=None):
    return Fields.of(logits=lambda x, t: apply_fn(params, shift_right(x, bos_id), t, cond))

  return Objective(loss, fields)
