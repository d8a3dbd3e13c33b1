"""The training engine: a jit-compiled, data-parallel, donated multi-step train call, with
periodic evaluation, checkpointing, preemption handling and resumption.

Used as `train(config, workdir, task)`; `evaluate` and `sample` restore the latest
checkpoint of a workdir. Config keys read here: seed, train.*, optim.*, eval.use_ema.
"""
import contextlib
import functools
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from diffjax.train import checkpoint as checkpoint_lib
from diffjax.train import parallel
from diffjax.train import workdir as workdir_lib
from diffjax.train.optim import build_optimizer
from diffjax.train.state import TrainState, create_train_state, ema_update
from diffjax.train.writer import Progress, RunWriter


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or infinite; the run stopped without saving the bad state."""


def _with_batch(batch):
  return () if batch is None else (batch,)


def _micro_batches(batch, num_micro):
  """(B, ...) leaves -> (num_micro, B / num_micro, ...), micro-batch i = rows i::num_micro,
  so each micro-batch stays evenly spread over the data-parallel devices."""
  def split(x):
    if x.shape[0] % num_micro:
      raise ValueError(f"A batch of {x.shape[0]} does not split into {num_micro} "
                       "micro-batches (train.grad_accum_steps).")
    x = x.reshape(x.shape[0] // num_micro, num_micro, *x.shape[1:])
    return jnp.moveaxis(x, 1, 0)
  return jax.tree.map(split, batch)


def build_train_call(task, optimizer, ema_decay, mesh, grad_accum_steps=1):
  """Returns jitted `call(state, num_steps, batches=None) -> (state, per-step metrics)`.

  `num_steps` training steps run inside one compiled call via `lax.scan`; the state is
  donated and laid out by `parallel.state_shardings` (replicated unless the mesh's model
  axis is larger than 1), each step's batch is split over every device. Tasks
  that draw their own batches on device get `batches=None`; tasks fed from the host get
  `batches`, a pytree of global arrays with leading axes (num_steps, batch_size).
  With `grad_accum_steps` = k > 1, each step averages the gradients of k micro-batches
  (host-fed batches are split k ways; on-device tasks are called k times with keys
  fold_in(key, i) and should draw batch_size / k examples per call).
  """
  shard = parallel.batch_sharding_constraint(mesh)
  rep = parallel.replicated(mesh)
  value_and_grad = jax.value_and_grad(task.loss, has_aux=True)

  def loss_and_grads(params, key, step, batch):
    if grad_accum_steps == 1:
      return value_and_grad(params, key, shard, step, *_with_batch(batch))
    micro = None if batch is None else _micro_batches(batch, grad_accum_steps)

    def accumulate(total, inputs):
      i, mb = inputs
      mb = None if mb is None else jax.tree.map(shard, mb)
      out = value_and_grad(params, jax.random.fold_in(key, i), shard, step, *_with_batch(mb))
      return jax.tree.map(lambda a, b: a + b / grad_accum_steps, total, out), None

    first = None if micro is None else jax.tree.map(lambda x: x[0], micro)
    shapes = jax.eval_shape(
        lambda: value_and_grad(params, key, shard, step, *_with_batch(first)))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    total, _ = jax.lax.scan(accumulate, zeros, (jnp.arange(grad_accum_steps), micro))
    return total

  def one_step(state: TrainState, batch):
    key = jax.random.fold_in(state.key, state.step)
    (loss, aux), grads = loss_and_grads(state.params, key, state.step, batch)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = ema_update(state.ema_params, params, state.step, ema_decay)
    state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                          ema_params=ema)
    finite = jax.tree.reduce(lambda ok, x: ok & jnp.all(jnp.isfinite(x)), params, True)
    return state, {"loss": loss, "grad_norm": optax.tree.norm(grads),
                   "params_finite": finite, **aux}

  @functools.partial(jax.jit, static_argnums=1, donate_argnums=0)
  def call(state, num_steps, batches=None):
    state, metrics = jax.lax.scan(one_step, state, batches, length=num_steps)
    state = jax.lax.with_sharding_constraint(state, parallel.state_shardings(mesh, state))
    return state, jax.lax.with_sharding_constraint(metrics, rep)

  return call


def _host_batches(iterator, num_steps, mesh):
  """Stacks this host's next num_steps local batches into global (num_steps, B, ...)
  arrays split over the data axis (each host contributes its own rows)."""
  local = [next(iterator) for _ in range(num_steps)]
  stacked = jax.tree.map(lambda *xs: np.stack(xs), *local)
  sharding = jax.sharding.NamedSharding(mesh,
                                        jax.sharding.PartitionSpec(None, parallel.BATCH_AXES))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), stacked)


def _initial_state_fn(task, optimizer, mesh):
  create = functools.partial(create_train_state, task.init_params, optimizer)
  shardings = parallel.state_shardings(mesh, jax.eval_shape(create, jax.random.PRNGKey(0)))
  return jax.jit(create, out_shardings=shardings)


def _abstract_state(init_fn, key, mesh):
  shapes = jax.eval_shape(init_fn, key)
  return jax.tree.map(lambda s, sharding: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                               sharding=sharding),
                      shapes, parallel.state_shardings(mesh, shapes))


def _next_boundary(step, train_config):
  """The next step at which the loop must stop to log, evaluate or checkpoint."""
  boundary = train_config.num_steps
  for every in (train_config.log_every, train_config.eval_every,
                train_config.checkpoint_every):
    if every > 0:
      boundary = min(boundary, (step // every + 1) * every)
  return boundary


def _check_finite(losses, params_finite, first_step, checkpointer):
  """Raises NonFiniteLossError naming the first step whose loss or update was not finite."""
  bad = np.flatnonzero(~np.isfinite(losses) | ~params_finite)
  if bad.size:
    step = first_step + int(bad[0])
    what = (f"the loss became {losses[bad[0]]}" if not np.isfinite(losses[bad[0]])
            else "the parameters became non-finite")
    raise NonFiniteLossError(
        f"At step {step} {what}; stopping without saving. The last good checkpoint "
        f"(step {checkpointer.latest_step()}) is kept in {checkpointer.directory}.")


def _due(step, every, last):
  return step == last or (every > 0 and step % every == 0)


@contextlib.contextmanager
def _preemption_flag():
  """Yields a dict whose 'requested' turns True on SIGTERM (main thread only)."""
  flag = {"requested": False}
  if threading.current_thread() is not threading.main_thread():
    yield flag
    return
  def handler(signum, frame):
    del frame
    logging.warning("Received signal %d: saving a checkpoint and stopping.", signum)
    flag["requested"] = True
  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield flag
  finally:
    signal.signal(signal.SIGTERM, previous)


def _keys(seed):
  root = jax.random.PRNGKey(seed)
  return jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)  # (train, eval)


def _run_evaluation(task, state, step, eval_key, writer, mesh, use_ema=True):
  params = parallel.gather_replicated(state.ema_params if use_ema else state.params, mesh)
  metrics, figures = task.evaluate(params, eval_key)
  writer.evaluation(step, metrics)
  writer.figures(step, figures)
  writer.flush()
  logging.info("eval at step %d: %s", step,
               ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in metrics.items()))
  return metrics


def train(config, workdir, task, *, devices=None, overwrite=False) -> TrainState:
  """Trains `task` in `workdir`, resuming from its latest good checkpoint if any.

  Returns the final train state. Raises NonFiniteLossError on a NaN/Inf loss (the last
  good checkpoint is kept), IncompatibleWorkdirError for a workdir holding another run.
  """
  tc = config.train
  mesh = parallel.make_data_mesh(devices, tc.model_axis_size)
  parallel.check_batch_size(task.batch_size, mesh)
  workdir_lib.prepare_workdir(workdir, config, overwrite=overwrite)
  optimizer = build_optimizer(config.optim, tc.num_steps)
  train_key, eval_key = _keys(config.seed)
  init_fn = _initial_state_fn(task, optimizer, mesh)
  checkpointer = checkpoint_lib.Checkpointer(workdir, tc.keep_checkpoints)
  writer = None
  try:
    state = checkpointer.restore_latest(_abstract_state(init_fn, train_key, mesh))
    if state is None:
      state = init_fn(train_key)
      logging.info("Starting a new run in %s on %d device(s).", workdir, mesh.devices.size)
    else:
      logging.info("Resuming from step %d in %s.", int(state.step), workdir)
    step = int(jax.device_get(state.step))
    workdir_lib.truncate_metrics(workdir, step)
    writer = RunWriter(workdir)
    train_call = build_train_call(task, optimizer, config.optim.ema_decay, mesh,
                                  tc.grad_accum_steps)
    batches = task.data(step) if task.data is not None else None
    progress = Progress(tc.num_steps)
    compiled = set()
    with _preemption_flag() as preemption:
      while step < tc.num_steps:
        num_steps = min(tc.steps_per_call, _next_boundary(step, tc) - step)
        progress.restart_clock()
        chunk = None if batches is None else _host_batches(batches, num_steps, mesh)
        state, metrics = train_call(state, num_steps, chunk)
        losses = parallel.to_host(metrics["loss"])
        progress.advance(num_steps, timed=num_steps in compiled)
        compiled.add(num_steps)
        _check_finite(losses, parallel.to_host(metrics["params_finite"]), step, checkpointer)
        step += num_steps
        if _due(step, tc.log_every, tc.num_steps):
          progress.log(step, float(losses.mean()))
          writer.scalars(step, {
              "train/loss": float(losses.mean()),
              "train/grad_norm": float(parallel.to_host(metrics["grad_norm"]).mean()),
              "train/steps_per_second": progress.steps_per_second})
        if _due(step, tc.checkpoint_every, tc.num_steps) or preemption["requested"]:
          checkpointer.save(state, wait=preemption["requested"])
        if preemption["requested"]:
          logging.warning("Stopped at step %d on request; rerun the same command to "
                          "resume.", step)
          break
        if _due(step, tc.eval_every, tc.num_steps):
          _run_evaluation(task, state, step, eval_key, writer, mesh, config.eval.use_ema)
  finally:
    checkpointer.close()
    if writer is not None:
      writer.close()
  return state


def restore_for_inference(config, workdir, task, devices=None):
  """Restores the latest good checkpoint of `workdir` (for eval and sample modes); the
  state is replicated on every device."""
  mesh = parallel.make_data_mesh(devices, config.train.model_axis_size)
  workdir_lib.check_workdir(workdir, config)
  optimizer = build_optimizer(config.optim, config.train.num_steps)
  train_key, _ = _keys(config.seed)
  init_fn = _initial_state_fn(task, optimizer, mesh)
  checkpointer = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
  try:
    state = checkpointer.restore_latest(_abstract_state(init_fn, train_key, mesh))
  finally:
    checkpointer.close()
  if state is None:
    raise checkpoint_lib.CheckpointError(
        f"No checkpoint in {workdir}: train first with --mode=train.")
  return parallel.gather_replicated(state, mesh)


def evaluate(config, workdir, task, *, devices=None):
  """Evaluates the latest checkpoint and appends the result to metrics.jsonl."""
  state = restore_for_inference(config, workdir, task, devices)
  writer = RunWriter(workdir)
  try:
    return _run_evaluation(task, state, int(jax.device_get(state.step)), _keys(config.seed)[1],
                           writer, parallel.make_data_mesh(devices), config.eval.use_ema)
  finally:
    writer.close()


def sample(config, workdir, task, *, devices=None):
  """Draws samples from the latest checkpoint into samples.npz and plots/."""
  state = restore_for_inference(config, workdir, task, devices)
  step = int(jax.device_get(state.step))
  params = state.ema_params if config.eval.use_ema else state.params
  arrays, figures = task.sample(params, jax.random.fold_in(_keys(config.seed)[1], step))
  writer = RunWriter(workdir)
  try:
    if writer.enabled:
      path = os.path.join(workdir, "samples.npz")
      np.savez(path, **arrays)
      logging.info("Wrote %s (%s).", path,
                   ", ".join(f"{k}: {v.shape}" for k, v in arrays.items()))
    writer.figures(step, figures)
  finally:
    writer.close()
  return arrays
