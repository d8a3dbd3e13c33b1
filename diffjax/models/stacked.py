"""Several copies of one model with their outputs stacked: multi-head objectives' network."""
from typing import Sequence

import jax
import jax.numpy as jnp

from diffjax.models.base import MODELS, Model, build_model


@MODELS.register("stacked_fields")
def stacked_fields(data_shape: Sequence[int], num_fields=2, base="mlp",
                   **base_options) -> Model:
  """`num_fields` independent copies of the model `base`, outputs concatenated along the
  last axis: x (B, ..., C) -> (B, ..., num_fields * C). The simplest network for
  multi-head objectives (e.g. SF2M's velocity and score); params {"field_i": params_i}."""
  net = build_model(base, data_shape, **base_options)

  def init(key):
    keys = jax.random.split(key, num_fields)
    return {f"field_{i}": net.init(k) for i, k in enumerate(keys)}

  def apply(params, x, t, cond=None, *, dropout_key=None):
    keys = ([None] * num_fields if dropout_key is None
            else list(jax.random.split(dropout_key, num_fields)))
    return jnp.concatenate([net.apply(params[f"field_{i}"], x, t, cond, dropout_key=k)
                            for i, k in enumerate(keys)], axis=-1)

  return Model(init, apply)
