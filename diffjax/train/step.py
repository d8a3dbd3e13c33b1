"""The train step: one pure `step(state, batch, key) -> (state, metrics)`.

  step = make_train_step(loss, optimizer, ema_decay=0.999)
  state = create_train_state(init_params, optimizer, key)     # diffjax.train.TrainState
  state, metrics = step(state, batch, jax.random.fold_in(state.key, state.step))

A step differentiates the loss (averaging the gradients of `grad_accum_steps`
micro-batches), applies the optimizer's update to the parameters it trains (the trainable
mask), advances the EMA of the parameters and the step count, and returns the metrics
{"loss", "grad_norm", "params_finite", **aux}. It is the only place in diffjax where an
optimizer update is applied: the engine's compiled train call
(`diffjax.train.build_train_call`) runs `lax.scan` over it with the key
fold_in(state.key, state.step) (`scan_steps`), and so do `diffjax.train.fit` for
notebooks and the benchmarks. It is pure and unjitted: jit it, scan it, or call it inside
another function.

Losses have the engine's signature

  loss, aux = loss(params, key, shard, step, batch)

key: this step's key (this micro-batch's, fold_in(key, i), with gradient accumulation);
shard: constrains a batch-first array to the data-parallel devices (the identity outside
the engine); step: the global step, an int32 scalar; batch: the step's batch as given to
`step` (one micro-batch of it with accumulation; None for losses that draw their own);
aux: a dict of scalars.

One optimizer (`make_train_step`): state.opt_state is optimizer.init(params). With a
`trainable` mask, a frozen parameter keeps its value and its optimizer state bit for bit
and has a zero gradient (`diffjax.train.phases`).

Players (`make_players_step`, "Players" in `diffjax.train.task`): a sequence of
`diffjax.train.Player`s, each with its own loss, optax optimizer and trainable mask,
updated one after another inside the step (Gauss-Seidel: player i differentiates its loss
at the parameters the players before it have just updated, with the key fold_in(key, i)).
state.opt_state is {player name: that optimizer's state over the parameters the player
trains} (`diffjax.train.players`; `create_train_state(init, players, key)` builds it);
a player absent from `players` (one another phase updates) keeps its state untouched. The
metrics add "<name>/loss", "<name>/grad_norm" and "<name>/<aux key>" per player; "loss" is
the players' sum and "grad_norm" the norm of all their gradients together.
"""
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from diffjax.train import phases as phases_lib
from diffjax.train import players as players_lib
from diffjax.train.state import TrainState, ema_update
from diffjax.train.task import Player


def _identity(x):
  return x


def micro_batches(batch, num_micro):
  """(B, ...) leaves -> (num_micro, B / num_micro, ...), micro-batch i = rows i::num_micro,
  so each micro-batch stays evenly spread over the data-parallel devices."""
  def split(x):
    if x.shape[0] % num_micro:
      raise ValueError(f"A batch of {x.shape[0]} does not split into {num_micro} "
                       "micro-batches (train.grad_accum_steps).")
    x = x.reshape(x.shape[0] // num_micro, num_micro, *x.shape[1:])
    return jnp.moveaxis(x, 1, 0)
  return jax.tree.map(split, batch)


def _gradients(loss, grad_accum_steps, shard):
  """grads(x, key, step, batch) -> ((loss, aux), d loss / d x) of loss(x, key, shard, step,
  batch), averaged over grad_accum_steps micro-batches: host batches are split k ways, a
  loss drawing its own batch (batch None) is called k times with keys fold_in(key, i)."""
  value_and_grad = jax.value_and_grad(loss, has_aux=True)
  if grad_accum_steps == 1:
    return lambda x, key, step, batch: value_and_grad(x, key, shard, step, batch)

  def grads(x, key, step, batch):
    micro = None if batch is None else micro_batches(batch, grad_accum_steps)

    def accumulate(total, inputs):
      i, mb = inputs
      mb = None if mb is None else jax.tree.map(shard, mb)
      out = value_and_grad(x, jax.random.fold_in(key, i), shard, step, mb)
      return jax.tree.map(lambda a, b: a + b / grad_accum_steps, total, out), None

    first = None if micro is None else jax.tree.map(lambda m: m[0], micro)
    shapes = jax.eval_shape(lambda: value_and_grad(x, key, shard, step, first))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    total, _ = jax.lax.scan(accumulate, zeros, (jnp.arange(grad_accum_steps), micro))
    return total
  return grads


def _finish(state: TrainState, params, opt_state, ema_decay, metrics):
  """The state after the update (EMA, step + 1) and the metrics with params_finite."""
  ema = (state.ema_params if ema_decay is None
         else ema_update(state.ema_params, params, state.step, ema_decay))
  state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                        ema_params=ema)
  finite = jax.tree.reduce(lambda ok, x: ok & jnp.all(jnp.isfinite(x)), params, True)
  return state, {**metrics, "params_finite": finite}


def scan_steps(step, state: TrainState, num_steps: int, batches=None):
  """`num_steps` steps of `step` in one `lax.scan`, as the engine runs them: step s gets
  the key fold_in(state.key, s) and batches[s] (leaves with leading axis num_steps; None
  for losses that draw their own). Returns (state, metrics with leading axis num_steps).
  """
  return jax.lax.scan(lambda s, b: step(s, b, jax.random.fold_in(s.key, s.step)), state,
                      batches, length=num_steps)


def make_train_step(loss: Callable, optimizer: optax.GradientTransformation, *,
                    trainable: Optional[Callable] = None, ema_decay: Optional[float] = None,
                    grad_accum_steps: int = 1, shard: Optional[Callable] = None):
  """The step of one optimizer over the parameters (see the module docstring).

  Args:
    loss: loss(params, key, shard, step, batch) -> (loss, aux).
    optimizer: an optax GradientTransformation; state.opt_state is its state.
    trainable: optional trainable(params) -> prefix tree of Python bools
      (`diffjax.train.Phase.trainable`); parameters marked False are frozen.
    ema_decay: the EMA's decay (with warm-up, `diffjax.train.state.ema_update`); None
      leaves state.ema_params as they are.
    grad_accum_steps: micro-batches whose gradients are averaged per step.
    shard: the data-parallel constraint given to the loss and to each micro-batch
      (default: the identity).

  Returns:
    step(state, batch, key) -> (state, metrics), pure.
  """
  shard = shard or _identity
  grads_of = _gradients(loss, grad_accum_steps, shard)

  def step(state: TrainState, batch, key):
    (value, aux), grads = grads_of(state.params, key, state.step, batch)
    mask = (None if trainable is None else
            phases_lib.parameter_mask(trainable, state.params))
    if mask is not None:
      grads = phases_lib.zero_frozen(mask, grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if mask is not None:
      params = phases_lib.select(mask, params, state.params)
      opt_state = phases_lib.select(
          phases_lib.optimizer_state_mask(optimizer, opt_state, mask), opt_state,
          state.opt_state)
    return _finish(state, params, opt_state, ema_decay,
                   {"loss": value, "grad_norm": optax.tree.norm(grads), **aux})
  return step


def make_players_step(players: Sequence[Player], *, ema_decay: Optional[float] = None,
                      grad_accum_steps: int = 1, shard: Optional[Callable] = None):
  """The step of several players, updated in the order given (see the module docstring).

  Args:
    players: `diffjax.train.Player`s, each with a GradientTransformation optimizer.
    ema_decay, grad_accum_steps, shard: as for `make_train_step`.

  Returns:
    step(state, batch, key) -> (state, metrics), pure.
  """
  players = players_lib.check_players(players)
  for player in players:
    if not isinstance(player.optimizer, optax.GradientTransformation):
      raise ValueError(f"Player {player.name!r}: optimizer={player.optimizer!r}; the step "
                       "takes an optax GradientTransformation (the engine builds one from "
                       "a config section name).")
  shard = shard or _identity

  def player_loss(player, mask, params):
    """The player's loss as a function of the parameters it trains."""
    return lambda owned, *args: player.loss(players_lib.merge(mask, params, owned), *args)

  def step(state: TrainState, batch, key):
    params, opt_states = state.params, dict(state.opt_state)
    metrics, total, all_grads = {}, 0.0, []
    for i, player in enumerate(players):
      mask = phases_lib.trainable_mask(player, params)
      owned = players_lib.own(mask, params)
      grads_of = _gradients(player_loss(player, mask, params), grad_accum_steps, shard)
      (value, aux), grads = grads_of(owned, jax.random.fold_in(key, i), state.step, batch)
      updates, opt_states[player.name] = player.optimizer.update(
          grads, opt_states[player.name], owned)
      params = players_lib.merge(mask, params, optax.apply_updates(owned, updates))
      metrics.update({f"{player.name}/loss": value,
                      f"{player.name}/grad_norm": optax.tree.norm(grads),
                      **{f"{player.name}/{k}": v for k, v in aux.items()}})
      total = total + value
      all_grads.append(grads)
    return _finish(state, params, opt_states, ema_decay,
                   {"loss": total, "grad_norm": optax.tree.norm(all_grads), **metrics})
  return step
