"""The train state: everything a run needs to continue bit-for-bit from a checkpoint."""
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from diffjax.train.players import init_optimizer_state


@flax.struct.dataclass
class TrainState:
  """step: () int32; params, ema_params: pytrees; opt_state: optax state (for a task with
  players, {player name: its optimizer's state}); key: (2,) uint32.

  The key never changes: step s uses fold_in(key, s), so resuming at any step draws the
  same randomness as an uninterrupted run.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any
  key: jax.Array


def create_train_state(init_params, optimizer, key) -> TrainState:
  """init_params(key) -> params; the EMA starts at the initial parameters. `optimizer`: an
  optax GradientTransformation, or the players of a task (`diffjax.train.Player`s, each
  with a GradientTransformation)."""
  k_init, k_train = jax.random.split(key)
  params = init_params(k_init)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=init_optimizer_state(optimizer, params), ema_params=params,
                    key=k_train)


def ema_update(ema_params, params, step, decay):
  """EMA with the warm-up decay min(decay, (1 + s) / (10 + s)) so early averages are usable."""
  step = step.astype(jnp.float32)
  rate = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: rate * e + (1.0 - rate) * p, ema_params, params)
