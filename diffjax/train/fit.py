"""`fit`: train a loss for N steps in a notebook, on the engine's train step.

  import jax
  import optax
  from diffjax.data import get_sampler
  from diffjax.models import build_model
  from diffjax.objectives import build_objective
  from diffjax.paths import build_path
  from diffjax.train import fit

  model = build_model("mlp", (2,), width=64, depth=3, time_embedding="concat")
  objective = build_objective("flow_matching", build_path("linear"))
  state = fit(objective=objective, model=model, optimizer=optax.adam(1e-3),
              data=get_sampler("moons"), batch_size=256, num_steps=2000,
              key=jax.random.PRNGKey(0), progress=True)
  velocity = objective.fields(model.apply, state.ema_params)   # diffjax.core.Fields

No workdir, checkpoint or device mesh: the run lives in memory on the default device.
Steps run `steps_per_call` at a time in one compiled `lax.scan` over
`diffjax.train.step.make_train_step` (the engine's step) with the key
fold_in(state.key, state.step) (`diffjax.train.step.scan_steps`), so a chunk compiles
once and `fit` gives the parameters the engine's call gives for the same loss, optimizer
and key.
"""
import time
from typing import Any, Callable, Iterator, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffjax.train.state import TrainState, create_train_state
from diffjax.train.step import make_train_step, scan_steps


def _loss_and_aux(value):
  return value if isinstance(value, tuple) else (value, {})


def _objective_loss(objective, model):
  """loss(params, batch, key) of an objective: batch is x1 (B, ...) data, or a dict with
  "x1" and optionally "x0" (source samples; default N(0, I) of x1's shape) and "cond"."""
  def loss(params, batch, key):
    batch = batch if isinstance(batch, dict) else {"x1": batch}
    k_source, k_loss = jax.random.split(key)
    x1 = batch["x1"]
    x0 = batch.get("x0")
    if x0 is None:
      x0 = jax.random.normal(k_source, x1.shape, x1.dtype)
    return objective.loss(model.apply, params, k_loss, x0, x1, batch.get("cond"))
  return loss


def _progress_line(step, num_steps, loss, rate):
  width = 30
  done = int(width * step / num_steps)
  speed = f" | {rate:.0f} steps/s" if rate > 0 else ""
  return f"[{'#' * done}{'.' * (width - done)}] {step}/{num_steps} | loss {loss:.5f}{speed}"


def fit(loss: Optional[Callable] = None, optimizer: optax.GradientTransformation = None,
        params: Any = None, *, num_steps: int, key: jax.Array,
        data: Union[Callable, Iterator, None] = None, batch_size: Optional[int] = None,
        objective=None, model=None, ema_decay: Optional[float] = 0.999,
        trainable: Optional[Callable] = None, steps_per_call: int = 100,
        progress: bool = False) -> TrainState:
  """Trains `loss` (or `objective` on `model`) with `optimizer` for `num_steps` steps.

  Args:
    loss: loss(params, batch, key) -> scalar, or (scalar, aux dict); batch is None without
      `data` (the loss then draws its own from `key`). Give `loss`, or `objective` and
      `model`.
    optimizer: an optax GradientTransformation, e.g. optax.adam(1e-3).
    params: the initial parameters (a pytree) or init(key) -> parameters; default
      `model.init`.
    num_steps: training steps.
    key: a PRNG key; as for the engine, split into the initialisation's key and the
      training key, step s using fold_in(training key, s).
    data: `sample(key, batch_size) -> batch`, drawn inside the compiled step (e.g. a
      `diffjax.data.get_sampler(...)`), or an iterator of batches (pytrees of arrays,
      stacked on the host `steps_per_call` at a time), or None.
    batch_size: the batch size given to `sample`.
    objective, model: a `diffjax.objectives` Objective and a model (`init`, `apply`): the
      loss is objective.loss(model.apply, params, key, x0, x1, cond) with the batch as
      x1 (or a dict with "x1" and optionally "x0" and "cond"; x0 defaults to N(0, I)).
    ema_decay: the decay of the parameters' EMA (state.ema_params); None: no EMA.
    trainable: optional trainable(params) -> prefix tree of Python bools; parameters
      marked False stay as they are.
    steps_per_call: steps per compiled call (a shorter last call compiles once more).
    progress: print a plain-text progress bar with the loss and the speed.

  Returns:
    The final `diffjax.train.TrainState` (params, ema_params, opt_state, step, key).
  """
  if (loss is None) == (objective is None):
    raise ValueError("fit: give either loss or objective (with model).")
  if optimizer is None:
    raise ValueError("fit: give an optimizer, e.g. optax.adam(1e-3).")
  if objective is not None:
    if model is None:
      raise ValueError("fit: objective needs model (with init and apply).")
    loss = _objective_loss(objective, model)
  if params is None:
    if model is None:
      raise ValueError("fit: give params (a pytree or init(key)), or model.")
    params = model.init
  sample = data if callable(data) else None
  if sample is not None and batch_size is None:
    raise ValueError("fit: a sampler data(key, batch_size) needs batch_size.")
  batches = None if data is None or sample is not None else iter(data)

  def step_loss(p, k, shard, step, batch):
    del shard, step
    if sample is not None:
      k_data, k = jax.random.split(k)
      batch = sample(k_data, batch_size)
    return _loss_and_aux(loss(p, batch, k))

  step = make_train_step(step_loss, optimizer, trainable=trainable, ema_decay=ema_decay)

  run = jax.jit(lambda state, stacked, length: scan_steps(step, state, length, stacked),
                static_argnums=2, donate_argnums=0)
  init = params if callable(params) else (lambda _: params)
  # Compiled, so that the parameters and their EMA are distinct buffers (both donated).
  state = jax.jit(lambda k: create_train_state(init, optimizer, k))(key)
  done, seconds, timed_steps, lengths = 0, 0.0, 0, set()
  while done < num_steps:
    length = min(steps_per_call, num_steps - done)
    stacked = None
    if batches is not None:
      stacked = jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)),
                             *[next(batches) for _ in range(length)])
    start = time.perf_counter()
    state, metrics = run(state, stacked, length)
    losses = np.asarray(metrics["loss"])
    if length in lengths:  # Speeds leave compilation out.
      seconds += time.perf_counter() - start
      timed_steps += length
    lengths.add(length)
    done += length
    if progress:
      rate = timed_steps / seconds if seconds > 0 else 0.0
      print(_progress_line(done, num_steps, float(losses.mean()), rate),
            end="\n" if done == num_steps else "\r", flush=True)
  return state
