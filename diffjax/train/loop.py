"""The training engine: a jit-compiled, data-parallel, donated multi-step train call (a
`lax.scan` of the train step, `diffjax.train.step`), with periodic evaluation,
checkpointing, preemption handling and resumption.

Used as `train(config, workdir, task)`; `evaluate` and `sample` restore the latest
checkpoint of a workdir. Config keys read here: seed, train.*, optim.*, eval.use_ema, and
the optimizer sections that a task's players name. A task with phases
(`diffjax.train.task.Phase`) is trained phase after phase: train calls stop at phase
boundaries as they do at logging and checkpoint steps, and the step alone says which phase
a resumed run is in (`diffjax.train.phases`). A task with players
(`diffjax.train.task.Player`) updates them in turn inside each step.

Each distinct train call (a task's loss, or a phase's (loss, trainable, players)) compiles
once per chunk length: its input and output shardings are pinned (`TrainCall`), and
phases' contexts are replicated.
"""
import functools
import io

import jax
import numpy as np
from absl import logging

from diffjax.errors import ConfigError
from diffjax.train import checkpoint as checkpoint_lib
from diffjax.train import parallel
from diffjax.train import phases as phases_lib
from diffjax.train import players as players_lib
from diffjax.train import preemption as preemption_lib
from diffjax.train import storage
from diffjax.train import validation
from diffjax.train import workdir as workdir_lib
from diffjax.train.optim import build_optimizer
from diffjax.train.state import TrainState, create_train_state
from diffjax.train.step import make_players_step, make_train_step, scan_steps
from diffjax.train.task import Player
from diffjax.train.writer import Progress, RunWriter, describe_non_finite


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or infinite; the run stopped without saving the bad state."""


def _single_loss(task, phase, context):
  """The task's (or phase's) loss in the train step's signature (`diffjax.train.step`)."""
  if phase is not None:
    return lambda p, key, shard, step, batch: phase.loss(p, key, shard, step, batch, context)
  if task.data is None:
    return lambda p, key, shard, step, batch: task.loss(p, key, shard, step)
  return task.loss


def _phase_players(players, phase, context):
  """The players a phase updates (in the task's order), their losses given its context."""
  if phase is None:
    return players
  return tuple(Player(p.name, functools.partial(_with_context, p.loss, context),
                      p.optimizer, p.trainable)
               for p in players if p.name in phase.players)


def _with_context(loss, context, params, key, shard, step, batch):
  return loss(params, key, shard, step, batch, context)


def state_optimizer(task, optimizer):
  """What `create_train_state` takes for `task`: the optimizer, or for a task with players
  its players with their optimizers ({name: GradientTransformation} in `optimizer`)."""
  return players_lib.with_optimizers(task.players, optimizer) if task.players else optimizer


class TrainCall:
  """The engine's compiled multi-step train call (`build_train_call`): a jitted function
  whose input and output shardings are pinned, so that it compiles once per chunk length,
  whatever produced its arguments. Arguments laid out otherwise (a state built without
  jit, a context computed on one device) are moved first. `lower` is the jitted
  function's."""

  def __init__(self, jitted, state_shardings, replicated):
    self._jitted = jitted
    self.state_shardings = state_shardings
    self._replicated = replicated

  def _arguments(self, state, num_steps, batches, context):
    return (_placed(state, self.state_shardings), num_steps, batches,
            _placed(context, jax.tree.map(lambda _: self._replicated, context)))

  def __call__(self, state, num_steps, batches=None, context=None):
    return self._jitted(*self._arguments(state, num_steps, batches, context))

  def lower(self, state, num_steps, batches=None, context=None):
    return self._jitted.lower(*self._arguments(state, num_steps, batches, context))


def _placed(tree, shardings):
  """`tree` with every array on its sharding in `shardings` (moved only where it is not)."""
  if all(getattr(x, "sharding", None) == s
         for x, s in zip(jax.tree.leaves(tree), jax.tree.leaves(shardings))):
    return tree
  return jax.device_put(tree, shardings)


def build_train_call(task, optimizer, ema_decay, mesh, grad_accum_steps=1,
                     phase=None) -> TrainCall:
  """Returns the compiled `call(state, num_steps, batches=None, context=None) -> (state,
  per-step metrics)`.

  `num_steps` training steps run inside one compiled call via `lax.scan` over the train
  step (`diffjax.train.step`) with the key fold_in(state.key, state.step); the state is
  donated and laid out by `parallel.state_shardings` (replicated unless the mesh's model
  axis is larger than 1), each step's batch is split over every device. Tasks
  that draw their own batches on device get `batches=None`; tasks fed from the host get
  `batches`, a pytree of global arrays with leading axes (num_steps, batch_size).
  With `grad_accum_steps` = k > 1, each step averages the gradients of k micro-batches
  (host-fed batches are split k ways; on-device tasks are called k times with keys
  fold_in(key, i) and should draw batch_size / k examples per call).

  `optimizer`: an optax GradientTransformation; for a task with players, {player name:
  GradientTransformation}. With a `phase` (a `diffjax.train.Phase`), the call trains
  `phase.loss` (or the players it names), given `context` (what the phase's prepare
  returned) as an argument, and only the parameters `phase.trainable` marks True (see
  `diffjax.train.phases` for frozen parameters); the call depends on the phase only
  through (loss, trainable, players), so phases sharing them can share it. Without a
  phase it trains `task.loss` (or every player) and `context` is unused.

  Input and output shardings are pinned (`TrainCall`): each distinct call compiles once
  per chunk length.
  """
  shard = parallel.batch_sharding_constraint(mesh)
  rep = parallel.replicated(mesh)
  init = functools.partial(create_train_state, task.init_params,
                           state_optimizer(task, optimizer))
  state_shardings = parallel.state_shardings(
      mesh, jax.eval_shape(init, jax.random.PRNGKey(0)))
  batch_sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(None, parallel.BATCH_AXES))
  options = dict(ema_decay=ema_decay, grad_accum_steps=grad_accum_steps, shard=shard)

  def make_step(context):
    if task.players:
      return make_players_step(
          _phase_players(state_optimizer(task, optimizer), phase, context), **options)
    return make_train_step(_single_loss(task, phase, context), optimizer,
                           trainable=None if phase is None else phase.trainable, **options)

  def train_call(state, num_steps, batches, context):
    return scan_steps(make_step(context), state, num_steps, batches)

  jitted = jax.jit(train_call, static_argnums=1, donate_argnums=0,
                   in_shardings=(state_shardings, batch_sharding, rep),
                   out_shardings=(state_shardings, rep))
  return TrainCall(jitted, state_shardings, rep)


def _host_batches(iterator, num_steps, mesh):
  """Stacks this host's next num_steps local batches into global (num_steps, B, ...)
  arrays split over the data axis (each host contributes its own rows)."""
  local = [next(iterator) for _ in range(num_steps)]
  stacked = jax.tree.map(lambda *xs: np.stack(xs), *local)
  sharding = jax.sharding.NamedSharding(mesh,
                                        jax.sharding.PartitionSpec(None, parallel.BATCH_AXES))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), stacked)


def _initial_state_fn(task, optimizer, mesh):
  create = functools.partial(create_train_state, task.init_params,
                             state_optimizer(task, optimizer))
  shardings = parallel.state_shardings(mesh, jax.eval_shape(create, jax.random.PRNGKey(0)))
  return jax.jit(create, out_shardings=shardings)


def _abstract_state(init_fn, key, mesh):
  shapes = jax.eval_shape(init_fn, key)
  return jax.tree.map(lambda s, sharding: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                               sharding=sharding),
                      shapes, parallel.state_shardings(mesh, shapes))


def _next_boundary(step, train_config, last):
  """The next step at which the loop must stop to log, evaluate or checkpoint."""
  boundary = last
  for every in (train_config.log_every, train_config.eval_every,
                train_config.checkpoint_every):
    if every > 0:
      boundary = min(boundary, (step // every + 1) * every)
  return boundary


def _check_finite(losses, params_finite, first_step, checkpointer, player_losses=None):
  """Raises NonFiniteLossError naming the first step whose loss or update was not finite
  (and, given `player_losses` {name: per-step losses}, the first player whose loss was)."""
  bad = np.flatnonzero(~np.isfinite(losses) | ~params_finite)
  if bad.size:
    step = first_step + int(bad[0])
    what = (f"the loss became {losses[bad[0]]}" if not np.isfinite(losses[bad[0]])
            else "the parameters became non-finite")
    for name, values in (player_losses or {}).items():
      if not np.isfinite(values[bad[0]]):
        what = f"the loss of player {name!r} became {values[bad[0]]}"
        break
    latest = checkpointer.latest_step()
    kept = (f"The last good checkpoint (step {latest}) is kept in {checkpointer.directory}"
            if latest is not None else
            "No checkpoint was saved yet, so a rerun starts from scratch, with this config "
            "or a corrected one")
    raise NonFiniteLossError(
        f"At step {step} {what}; stopping without saving. {kept}. A lower "
        "optim.learning_rate or a tighter optim.grad_clip may help.")


def _due(step, every, last):
  return step == last or (every > 0 and step % every == 0)


def _keys(seed):
  root = jax.random.PRNGKey(seed)
  return jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)  # (train, eval)


def _prepare_key(seed, phase_index):
  """The key of phase `phase_index`'s prepare: the same whenever the phase is prepared."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), 2), phase_index)


def _check_task(task):
  """The task's PhasePlan, or None for a task without phases; ConfigError if malformed."""
  names = None
  if task.players:
    if task.loss is not None:
      raise ConfigError("A Task with players trains each player's own loss; set Task.loss "
                        "to None (it would be ignored).")
    names = [p.name for p in players_lib.check_players(task.players)]
  if task.phases:
    if task.loss is not None:
      raise ConfigError("A Task with phases trains each phase's own loss; set Task.loss to "
                        "None (it would be ignored).")
    return phases_lib.plan_phases(task.phases, names)
  if task.loss is None and not task.players:
    raise ConfigError("The Task has no loss, no phases and no players: give Task.loss, "
                      "phases or players.")
  return None


def build_optimizers(config, task, schedule_steps):
  """The optimizer of `task` (`build_optimizer` of config.optim) or, for a task with
  players, {player name: its optimizer}: its own GradientTransformation, the config
  section it names (`validation.optimizer_section`), or config.optim."""
  if not task.players:
    return build_optimizer(config.optim, schedule_steps)
  optimizers = {}
  for player in task.players:
    optimizer = player.optimizer
    if optimizer is None:
      optimizer = build_optimizer(config.optim, schedule_steps)
    elif isinstance(optimizer, str):
      section = validation.optimizer_section(config, optimizer, f"Player {player.name!r}")
      optimizer = build_optimizer(section, schedule_steps)
    optimizers[player.name] = optimizer
  return optimizers


def _run_length(plan, train_config):
  """(schedule_steps, last_step) of a run: the learning-rate schedule's length (unless
  optim.decay_steps fixes it) and the step at which this call of `train` stops.

  Without phases both are train.num_steps. With phases the phases define the run: the
  schedule spans all of their steps, and train.num_steps only stops the run earlier (a
  larger value stops at the phases' end); rerunning with a larger train.num_steps resumes
  the same run bit for bit.
  """
  if plan is None:
    return train_config.num_steps, train_config.num_steps
  return plan.total_steps, min(train_config.num_steps, plan.total_steps)


def _what_trains(phase):
  """What a phase's train call depends on: (loss, trainable, players)."""
  return (phase.loss, phase.trainable, tuple(phase.players or ()))


class _PhaseRunner:
  """The compiled train calls and prepares of a run with phases: one train call per
  distinct (loss, trainable, players), one prepare per distinct (prepare, trainable,
  players). Prepares return replicated contexts, so each call compiles once."""

  def __init__(self, plan, build_call, abstract_params, seed, task, mesh):
    self.plan = plan
    self._build_call = build_call
    self._seed = seed
    self._calls = {}
    self._prepares = {}
    for i, phase in enumerate(plan.phases):  # Checks every phase before a run starts.
      if phase.players is None:
        mask = phases_lib.trainable_mask(phase, abstract_params)
      else:
        mask = players_lib.union_mask(
            [p for p in task.players if p.name in phase.players], abstract_params)
      key = (phase.prepare, *_what_trains(phase)[1:])
      if phase.prepare is not None and key not in self._prepares:
        self._prepares[key] = phases_lib.compile_prepare(phase, mask,
                                                         parallel.replicated(mesh))
        phases_lib.check_prepare(self._prepares[key], phase, abstract_params,
                                 _prepare_key(seed, i))

  def start(self, index, params, step):
    """(train call, context) of phase `index`, entered at `step` (its start, or inside it
    when a run resumes)."""
    phase = self.plan.phases[index]
    start, end = self.plan.starts[index], self.plan.end(index)
    logging.info("Phase %d/%d %r: steps %d to %d%s.", index + 1, len(self.plan.phases),
                 phase.name, start, end, f", resuming at step {step}" if step > start else "")
    key = _what_trains(phase)
    if key not in self._calls:
      self._calls[key] = self._build_call(phase)
    context = None
    if phase.prepare is not None:
      context = self._prepares[(phase.prepare, *key[1:])](
          params, _prepare_key(self._seed, index))
    return self._calls[key], context


def _run_evaluation(task, state, step, eval_key, writer, mesh, use_ema=True, mode=None):
  params = parallel.gather_replicated(state.ema_params if use_ema else state.params, mesh)
  metrics, figures = task.evaluate(params, eval_key)
  non_finite = describe_non_finite(metrics)
  if non_finite:
    logging.warning("eval at step %d: %s not finite (written as null in metrics.jsonl, "
                    "which is JSON): the samples are probably not finite (a diverging "
                    "model, e.g. too high a learning rate); figures leave non-finite points "
                    "out.", step, ", ".join(non_finite))
  writer.evaluation(step, metrics, figures, mode=mode)
  logging.info("eval at step %d: %s", step,
               ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in metrics.items()))
  return metrics


def _devices(devices):
  return jax.devices() if devices is None else list(devices)


def train(config, workdir, task, *, devices=None, overwrite=False) -> TrainState:
  """Trains `task` in `workdir`, resuming from its latest good checkpoint if any.

  A task without phases trains `task.loss` for train.num_steps steps. A task with phases
  trains them in order (see `_run_length` for train.num_steps); each train call stays
  inside one phase, whose prepare runs when the phase starts or the run resumes inside it.

  Everything is checked before the workdir is touched: the engine's config keys
  (`diffjax.train.validation`), the task, the workdir's path and the config it records.
  The run then holds the workdir's lock (`diffjax.train.locks`). `workdir` is a local
  path or a URL such as gs://bucket/run (`diffjax.train.storage`).

  Returns the final train state. Raises ConfigError for an invalid config value or task,
  WorkdirError / IncompatibleWorkdirError for a workdir that cannot take this run,
  WorkdirLockedError if another process uses it, NonFiniteLossError on a NaN/Inf loss
  (the last good checkpoint is kept).
  """
  devices = _devices(devices)
  validation.validate_engine_config(config, len(devices))
  tc = config.train
  plan = _check_task(task)
  schedule_steps, last = _run_length(plan, tc)
  mesh = parallel.make_data_mesh(devices, tc.model_axis_size)
  parallel.check_batch_size(task.batch_size, mesh)
  optimizer = build_optimizers(config, task, schedule_steps)
  train_key, _ = _keys(config.seed)
  init_fn = _initial_state_fn(task, optimizer, mesh)
  abstract = _abstract_state(init_fn, train_key, mesh)
  build_call = functools.partial(build_train_call, task, optimizer, config.optim.ema_decay,
                                 mesh, tc.grad_accum_steps)
  runner = None
  if plan is not None:
    runner = _PhaseRunner(plan, lambda phase: build_call(phase=phase), abstract.params,
                          config.seed, task, mesh)
  workdir_lib.check_workdir_path(workdir)
  if not overwrite:
    replaced = workdir_lib.check_workdir(workdir, config)
    if replaced:
      logging.info("The workdir %s holds no checkpoint of its earlier run (it stopped "
                   "before its first one), whose config differed (%s): starting from "
                   "scratch with the given config.", workdir, replaced)
  workdir_lib.create_workdir(workdir)
  with workdir_lib.lock_workdir(workdir, "train") as lock:
    workdir_lib.prepare_workdir(workdir, config, overwrite=overwrite,
                                record=dict(task.record or {}, num_steps=last))
    return _train_in_workdir(config, workdir, task, mesh, plan, last, runner, build_call,
                             init_fn, abstract, lock)


def _train_in_workdir(config, workdir, task, mesh, plan, last, runner, build_call, init_fn,
                      abstract, lock):
  """The body of `train`, with the workdir prepared and locked. From here on a SIGTERM
  only sets a flag (`diffjax.train.preemption`): the loop stops at the next step it can
  save, and never in the middle of opening or closing checkpoints."""
  tc = config.train
  train_key, eval_key = _keys(config.seed)
  with preemption_lib.deferred():
    checkpointer = checkpoint_lib.Checkpointer(workdir, tc.keep_checkpoints)
    writer = None
    try:
      state = checkpointer.restore_latest(abstract)
      restored = state is not None
      if not restored:
        state = init_fn(train_key)
      step = int(jax.device_get(state.step))
      workdir_lib.truncate_metrics(workdir, step)
      evaluated = {r["step"] for r in workdir_lib.read_metrics(workdir) if "mode" not in r}
      writer = RunWriter(workdir, resume_step=step, evaluated_steps=evaluated)
      if not restored:
        logging.info("Starting a new run in %s on %d device(s): %d steps.", workdir,
                     mesh.devices.size, last)
      elif step < last:
        logging.info("Resuming from step %d of %d in %s.", step, last, workdir)
      if (restored and step not in evaluated and _due(step, tc.eval_every, last)
          and not preemption_lib.requested()):
        logging.info("The evaluation at step %d is missing (the run stopped before it was "
                     "written); evaluating now.", step)
        _run_evaluation(task, state, step, eval_key, writer, mesh, config.eval.use_ema)
      if step >= last:
        logging.info("The run in %s is complete: it is at step %d and ends at step %d, so "
                     "there is nothing to train. Raise --config.train.num_steps to train "
                     "further, use --mode=eval or --mode=sample to use it, or --overwrite "
                     "to start again.", workdir, step, last)
        return state
      return _training_loop(config, task, state, step, mesh, plan, last, runner,
                            build_call, checkpointer, writer, eval_key, lock)
    finally:
      checkpointer.close()
      if writer is not None:
        writer.close()


def _training_loop(config, task, state, step, mesh, plan, last, runner, build_call,
                   checkpointer, writer, eval_key, lock):
  """Trains from `step` to `last`. Checks at every turn that the run still holds the
  workdir's `lock` (a lease on an object store can be lost), and stops without saving
  if not."""
  tc = config.train
  train_call = build_call() if plan is None else None
  phase_index, context = None, None
  batches = task.data(step) if task.data is not None else None
  progress = Progress(last)
  compiled = set()
  start_step = step
  while step < last and not preemption_lib.requested():
    lock.check_held()
    boundary = _next_boundary(step, tc, last)
    if plan is not None:
      if plan.index(step) != phase_index:
        phase_index = plan.index(step)
        train_call, context = runner.start(phase_index, state.params, step)
      boundary = min(boundary, plan.end(phase_index))
    num_steps = min(tc.steps_per_call, boundary - step)
    if not compiled:
      logging.info("Compiling the training step...")
    progress.restart_clock()
    chunk = None if batches is None else _host_batches(batches, num_steps, mesh)
    state, metrics = train_call(state, num_steps, chunk, context)
    losses = parallel.to_host(metrics["loss"])
    progress.advance(num_steps, timed=(train_call, num_steps) in compiled)
    compiled.add((train_call, num_steps))
    player_losses = {p.name: parallel.to_host(metrics[f"{p.name}/loss"])
                     for p in task.players if f"{p.name}/loss" in metrics}
    _check_finite(losses, parallel.to_host(metrics["params_finite"]), step, checkpointer,
                  player_losses)
    step += num_steps
    phase_ended = plan is not None and step == plan.end(phase_index)
    if _due(step, tc.log_every, last) or phase_ended:
      progress.log(step, float(losses.mean()))
      scalars = {
          "train/loss": float(losses.mean()),
          "train/grad_norm": float(parallel.to_host(metrics["grad_norm"]).mean())}
      if progress.steps_per_second > 0:  # Unknown until a call ran without compiling.
        scalars["train/steps_per_second"] = progress.steps_per_second
      if plan is not None:
        scalars["train/phase"] = phase_index   # The phase of the steps just trained.
      for name, values in player_losses.items():
        scalars[f"train/{name}/loss"] = float(values.mean())
        scalars[f"train/{name}/grad_norm"] = float(
            parallel.to_host(metrics[f"{name}/grad_norm"]).mean())
      writer.scalars(step, scalars)
    if _due(step, tc.checkpoint_every, last) and not preemption_lib.requested():
      lock.check_held()
      writer.flush()  # Every scalar up to this step is on disk before its checkpoint.
      checkpointer.save(state)
    if not preemption_lib.requested() and _due(step, tc.eval_every, last):
      _run_evaluation(task, state, step, eval_key, writer, mesh, config.eval.use_ema)
  if preemption_lib.requested():
    if step > start_step:
      lock.check_held()
      writer.flush()
      checkpointer.wait()
      checkpointer.save(state, wait=True)  # Nothing happens if this step is saved.
      logging.warning("Stopped at step %d on request; rerun the same command to resume.",
                      step)
    else:
      logging.warning("Stopped on request at step %d before training: nothing new to "
                      "save; rerun the same command to resume.", step)
    return state
  logging.info("Finished: step %d in %s.", step, checkpointer.workdir)
  return state


def _check_inference(config, workdir, devices, mode):
  """Checks, touching nothing, that `workdir` holds a run of `config` to evaluate or
  sample; returns the devices."""
  devices = _devices(devices)
  validation.validate_engine_config(config, len(devices))
  workdir_lib.check_has_run(workdir, mode)
  workdir_lib.check_workdir(workdir, config)
  return devices


def _restore_inference(config, workdir, task, devices, mode):
  """The latest checkpoint that restores, replicated on every device; reads only (a
  damaged checkpoint is skipped, never moved)."""
  mesh = parallel.make_data_mesh(devices, config.train.model_axis_size)
  optimizer = build_optimizers(config, task, config.train.num_steps)
  train_key, _ = _keys(config.seed)
  init_fn = _initial_state_fn(task, optimizer, mesh)
  checkpointer = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints,
                                             read_only=True)
  try:
    state = checkpointer.restore_latest(_abstract_state(init_fn, train_key, mesh))
  finally:
    checkpointer.close()
  if state is None:
    raise workdir_lib.WorkdirError(f"--mode={mode}: no checkpoint in {workdir}; train "
                                   "first (--mode=train).")
  return parallel.gather_replicated(state, mesh)


def restore_for_inference(config, workdir, task, devices=None):
  """Restores the latest good checkpoint of `workdir` (for eval and sample modes); the
  state is replicated on every device. Reads only: nothing in the workdir changes."""
  devices = _check_inference(config, workdir, devices, "eval")
  return _restore_inference(config, workdir, task, devices, "eval")


def evaluate(config, workdir, task, *, devices=None):
  """Evaluates the latest checkpoint that restores and adds the record, marked
  "mode": "eval", to metrics.jsonl in step order; figures go to plots/<name>_<step>_eval.png.
  Holds the workdir's lock; never changes checkpoints or TensorBoard events."""
  devices = _check_inference(config, workdir, devices, "eval")
  with workdir_lib.lock_workdir(workdir, "eval"):
    state = _restore_inference(config, workdir, task, devices, "eval")
    writer = RunWriter(workdir, events=False)
    return _run_evaluation(task, state, int(jax.device_get(state.step)),
                           _keys(config.seed)[1], writer, parallel.make_data_mesh(devices),
                           config.eval.use_ema, mode="eval")


def sample(config, workdir, task, *, devices=None):
  """Draws samples from the latest checkpoint that restores into
  samples/samples_<step>.npz and samples/<figure>_<step>.png (never the training run's
  plots). Holds the workdir's lock."""
  devices = _check_inference(config, workdir, devices, "sample")
  with workdir_lib.lock_workdir(workdir, "sample"):
    state = _restore_inference(config, workdir, task, devices, "sample")
    step = int(jax.device_get(state.step))
    params = state.ema_params if config.eval.use_ema else state.params
    arrays, figures = task.sample(params, jax.random.fold_in(_keys(config.seed)[1], step))
    writer = RunWriter(workdir, events=False)
    if writer.enabled:
      directory = storage.workdir_path(workdir) / "samples"
      storage.makedirs(directory)
      path = directory / f"samples_{step:07d}.npz"
      buffer = io.BytesIO()
      np.savez(buffer, **arrays)
      storage.write_bytes(path, buffer.getvalue())
      logging.info("Wrote %s (%s).", path,
                   ", ".join(f"{k}: {v.shape}" for k, v in arrays.items()))
    writer.figures(step, figures, directory="samples")
  return arrays
