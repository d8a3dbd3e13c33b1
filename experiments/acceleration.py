"""Cheaper sampling from a trained run (family `acceleration`): a method of
`ACCELERATION_METHODS` turns the network of source.workdir into a cheaper one, trained
through the engine. The run is read as the kind config.source.kind names (`SOURCE_KINDS`,
experiments/acceleration_sources.py:
"images", the digits DiT of configs/guidance/digits.py; "tokens", a masked-diffusion token
transformer such as configs/discrete/arithmetic.py); each method declares the kinds it
takes.

  deediff    exits and uncertainty modules after each block (`diffjax.acceleration.deediff`)
             trained with DeeDiff's losses; evaluated by early-exit sampling per threshold
             (images and tokens)
  ld_pruner  the DiT pruned to config.model's depth / mlp_ratio by the LD-Pruner score (or
             the magnitude / random baselines, `diffjax.acceleration.ld_pruner`), then
             fine-tuned with the run's own loss; the result is a run `runs.load` reads
  w2sd       evaluation only: W2SD (`diffjax.acceleration.w2sd`) with strong = the source
             run, weak = its checkpoint method.weak_step or the run method.weak_workdir;
             the pair is stored unchanged in the workdir by a one-step run of loss 0

Evaluations sample eval.num_samples examples with the config's sampler (config.sample):
images class-conditionally (labels 0..9 in turn), scored by the digits classifier's
accuracy and the proxy Fréchet distance (`digits_class_accuracy`, `digits_frechet_proxy`);
token sequences scored by the fraction of correct statements (a language with a checker,
the arithmetic one) and the held-out NELBO of eval.num_sequences sequences.
"""
import functools
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import runs
from diffjax.acceleration import deediff
from diffjax.acceleration import ld_pruner
from diffjax.acceleration.w2sd import check_strength, w2sd_guidance
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.guidance.cfg import check_interval
from diffjax.pipeline import build_pipeline, pipeline_record
from diffjax.registry import Registry
from diffjax.solvers import sample as solve
from diffjax.train import Phase, Task, parallel
from diffjax.train.validation import Key, check_keys
from experiments.acceleration_sources import (SOURCE_KINDS, SourceKind, flow_matching_batch,
                                             stages_of)


class Method(NamedTuple):
  """An acceleration method: check(config) of its own values (before the source run is
  read), build(config, source run, stream, evaluation, kind) -> Task, the config.method
  keys it reads besides name, and the source kinds (`SOURCE_KINDS`) it takes."""
  check: Callable
  build: Callable
  options: tuple
  kinds: tuple = ("images",)


ACCELERATION_METHODS = Registry("acceleration method")


COMMON_KEYS = (
    Key("source.step", "int", 0, meaning="0: the newest checkpoint"),
    Key("source.use_ema", "bool"),
    Key("source.kind", "name", names=SOURCE_KINDS.names),
    Key("eval.num_samples", "int", 2, meaning="samples per evaluation"),
)


def load_source(config, kind: SourceKind) -> runs.Run:
  """The run of source.workdir, refused in one line naming source.workdir if it is not a
  finished run of config.source.kind whose path and objective are the config's."""
  workdir = config.source.workdir
  try:
    run = runs.load(workdir, step=config.source.step or None,
                    use_ema=config.source.use_ema)
  except runs.RunError as error:
    raise ConfigError(f"source.workdir={workdir!r}: {error}") from None
  problem = kind.problem(run)
  if problem:
    raise ConfigError(f"source.workdir={workdir!r} holds {problem}; it is not a run of "
                      f"source.kind={config.source.kind!r}.")
  for section in ("path", "objective"):
    if dict(run.config[section]) != dict(config[section]):
      raise ConfigError(f"source.workdir={workdir!r} was trained with {section} "
                        f"{dict(run.config[section])}, the config says "
                        f"{dict(config[section])}; they must agree.")
  return run


def _timed(fn):
  """Seconds of one call of an already compiled (and once run) fn."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def check_deediff(config):
  for threshold in tuple(config.eval.thresholds) + (config.sample.threshold,):
    deediff.check_threshold(threshold)
  check_keys(config, (Key("method.train_backbone", "bool"),
                      Key("eval.thresholds", "floats", 0.0, 1.0,
                          meaning="exit thresholds (0: the full network)"),
                      Key("sample.threshold", "float", 0.0, 1.0)))


def build_deediff(config, run, stream, ev, kind) -> Task:
  if dict(config.model) != dict(run.config.model):
    raise ConfigError(f"model {dict(config.model)} differs from source.workdir's network "
                      f"{dict(run.config.model)}; DeeDiff adds exits to that network.")
  stages = stages_of(run)
  if stages.depth < 2:
    raise ConfigError(f"DeeDiff needs a network of at least 2 blocks; source.workdir's has "
                      f"{stages.depth}.")
  train_backbone = config.method.train_backbone

  def init_params(key):
    return {"network": run.params, "exits": deediff.init_exits(stages, run.params, key)}

  def loss(params, key, shard, step, batch, context=None):
    del step, context
    xt, t, cond, target, errors = kind.exit_batch(run, key, shard, batch)
    outputs, uncertainties = deediff.exit_outputs(stages, params["network"],
                                                  params["exits"], xt, t, cond)
    return deediff.deediff_loss(outputs, uncertainties, target, errors)

  trainable = lambda params: {"network": train_backbone, "exits": True}
  phase = Phase("deediff_exits", config.train.num_steps, loss, trainable)
  tally = deediff.BlockTally()   # Fed by the sampler's own calls (jax.debug.callback).
  # Seconds-long smoke runs (eval.fast_compile) compile without XLA's backend
  # optimisations, as the text family does.
  jit = (functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
         if config.eval.get("fast_compile", False) else jax.jit)
  draw = jit(lambda params, key, threshold: ev.draw(
      deediff.early_exit_model(stages, params["exits"], threshold, tally),
      params["network"], key).x)
  full = jit(lambda network, key: ev.draw(run.model.apply, network, key).x)
  fit = jit(lambda params, key, threshold: ev.fit(
      deediff.early_exit_model(stages, params["exits"], threshold), params["network"], key))

  def counted(params, key, threshold):
    """(samples, blocks per sample per call, blocks per call) at `threshold`."""
    tally.reset()
    x = jax.block_until_ready(draw(params, key, threshold))
    jax.effects_barrier()
    return x, tally.per_sample(), tally.per_call()

  def evaluate(params, key):
    values, figures = {}, {}
    k_draw, k_fit = jax.random.split(key)
    reference = full(params["network"], k_draw)
    for threshold in config.eval.thresholds:
      x, layers, loop = counted(params, k_draw, float(threshold))
      name = f"t{threshold:g}"
      values.update({f"{k}_{name}": v for k, v in ev.score(x).items()})
      values.update({f"{k}_{name}": float(v) for k, v in
                     fit(params, k_fit, float(threshold)).items()})
      values[f"layers_{name}"] = layers
      values[f"loop_layers_{name}"] = loop
      values[f"calls_{name}"] = tally.calls
      # The fraction of samples not identical to the full network's (same key).
      values[f"changed_{name}"] = float(np.mean(np.any(np.asarray(
          (x != reference).reshape(x.shape[0], -1)), axis=1)))
      values[f"seconds_{name}"] = _timed(lambda: draw(params, k_draw, float(threshold)))
      figures[f"samples_{name}"] = ev.grid(x, f"DeeDiff, threshold {threshold:g}, "
                                              f"{layers:.2f} of {stages.depth} blocks")
    return values, figures

  def sample(params, key):
    x, layers, _ = counted(params, key, float(config.sample.threshold))
    return ({"samples": np.asarray(parallel.to_host(x))},
            {"samples": ev.grid(x, f"DeeDiff, {layers:.2f} blocks per step")})

  return Task(init_params=init_params, loss=None, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate, phases=(phase,),
              record={**pipeline_record(run.pipeline), "acceleration": "deediff"})


ACCELERATION_METHODS.register("deediff", Method(check_deediff, build_deediff,
                                                ("train_backbone",), ("images", "tokens")))


def calibration_images(stream, n):
  """(images (n, ...), labels (n,)) from the stream's first batches."""
  batches, count, step = [], 0, 0
  while count < n:
    batches.append(stream.batch(step))
    count, step = count + len(batches[-1]["label"]), step + 1
  return tuple(jnp.asarray(np.concatenate([b[k] for b in batches])[:n])
               for k in ("image", "label"))


def check_ld_pruner(config):
  check_keys(config, (Key("method.score", "name", names=lambda: ld_pruner.SCORES),
                      Key("method.calibration_samples", "int", 2),
                      Key("method.seed", "int", 0, 2 ** 31 - 1),
                      Key("model.depth", "int", 1, meaning="blocks kept"),
                      Key("model.mlp_ratio", "float", 0.0, open_low=True,
                          meaning="MLP width kept / hidden_dim")))


def build_ld_pruner(config, run, stream, ev, kind) -> Task:
  del kind  # Images only.
  depth, width = ld_pruner.check_target(run.config.model, config.model)
  pipeline = build_pipeline(config, run.spec)   # The pruned network.
  source = run.pipeline
  n = config.method.calibration_samples

  calibration = calibration_images(stream, n)

  @jax.jit
  def pruned(key):
    k_batch, k_prune = jax.random.split(key)
    images, labels = calibration
    xt, t, _ = flow_matching_batch(source.path, k_batch, images)
    return ld_pruner.ld_prune(source.model.apply, run.params, (xt, t, labels), depth,
                              width, config.method.score, k_prune)

  cache = {}

  def pruning():
    """(params, kept blocks, kept channels), computed once: the engine may first ask for
    the parameters inside a trace, so they are computed eagerly there."""
    if "params" not in cache:
      with jax.ensure_compile_time_eval():
        cache["params"], cache["blocks"], cache["channels"] = pruned(
            jax.random.PRNGKey(config.method.seed))
    return cache["params"], cache["blocks"], cache["channels"]

  def init_params(key):
    del key  # The pruning is a function of the source run and method.seed.
    return pruning()[0]

  def loss(params, key, shard, step, batch):
    del step
    return pipeline.loss(params, key, shard, batch["image"], batch["label"])

  generate = jax.jit(lambda model_apply, params, key: ev.draw(model_apply, params, key).x,
                     static_argnums=0)
  x = jnp.zeros((2, *run.spec.shape))
  flops = lambda apply, params: network_flops(apply, params, x) / 2
  facts = {}

  def evaluate(params, key):
    if not facts:
      before = generate(pipeline.model.apply, pruning()[0], key)
      facts["kept_blocks"] = " ".join(str(int(b)) for b in pruning()[1])
      facts.update({f"{k}_before_finetune": v for k, v in ev.score(before).items()})
      facts.update({f"{k}_source": v for k, v in ev.score(
          generate(source.model.apply, run.params, key)).items()})
      facts["params"] = ld_pruner.parameter_count(params)
      facts["params_source"] = ld_pruner.parameter_count(run.params)
      facts["gflops_per_call"] = flops(pipeline.model.apply, params) / 1e9
      facts["gflops_per_call_source"] = flops(source.model.apply, run.params) / 1e9
    samples = generate(pipeline.model.apply, params, key)
    values = dict(facts, **ev.score(samples))
    return values, {"samples": ev.grid(samples, f"LD-Pruner ({config.method.score}), "
                                                 f"depth {depth}, MLP width {width}")}

  def sample(params, key):
    samples = generate(pipeline.model.apply, params, key)
    return ({"samples": np.asarray(parallel.to_host(samples))},
            {"samples": ev.grid(samples, "LD-Pruner")})

  return Task(init_params=init_params, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate,
              record={**pipeline_record(pipeline), "acceleration": "ld_pruner",
                      "pruned_from": str(config.source.workdir)})


ACCELERATION_METHODS.register("ld_pruner", Method(
    check_ld_pruner, build_ld_pruner, ("score", "calibration_samples", "seed")))


def check_w2sd(config):
  check_keys(config, (Key("method.weak_step", "int", 0,
                          meaning="0: the weak run's newest checkpoint"),
                      Key("method.strengths", "floats", 0.0,
                          meaning="reflection strengths lambda"),
                      Key("method.interval", "floats", 0.0, 1.0,
                          meaning="(t_start, t_end) of the reflections, 0 noise")))
  if not isinstance(config.method.weak_workdir, str):
    raise ConfigError(f"method.weak_workdir={config.method.weak_workdir!r} must be a workdir "
                      "or '' (the source run's own checkpoint method.weak_step).")
  if not config.method.strengths:
    raise ConfigError("method.strengths is empty; give at least one reflection strength.")
  for strength in config.method.strengths:
    check_strength(strength)
  if len(config.method.interval) != 2:
    raise ConfigError(f"method.interval={tuple(config.method.interval)} must be two times "
                      "(t_start, t_end) in [0, 1].")
  check_interval(config.method.interval)


def load_weak(config, run) -> runs.Run:
  """The weak model: checkpoint method.weak_step (0: the newest) of method.weak_workdir
  ('' : the source run), refused in one line unless it models the source run's data on
  its path."""
  method = config.method
  workdir = method.weak_workdir or config.source.workdir
  name = "method.weak_workdir" if method.weak_workdir else "source.workdir"
  try:
    weak = runs.load(workdir, step=method.weak_step or None, use_ema=config.source.use_ema,
                     allow_unfinished=True)
  except runs.RunError as error:
    raise ConfigError(f"method.weak_step={method.weak_step} of {name}={workdir!r}: "
                      f"{str(error).splitlines()[0]}") from None
  if weak.pipeline is None or tuple(weak.spec.shape) != tuple(run.spec.shape):
    shape = None if weak.pipeline is None else tuple(weak.spec.shape)
    raise ConfigError(f"{name}={workdir!r} models data of shape {shape}, the strong run "
                      f"{tuple(run.spec.shape)}; W2SD's weak model must model the same "
                      "data shape.")
  if weak.pipeline.num_classes != run.pipeline.num_classes:
    raise ConfigError(f"{name}={workdir!r} has {weak.pipeline.num_classes} classes, the "
                      f"strong run {run.pipeline.num_classes}; they must agree.")
  if dict(weak.config.path) != dict(run.config.path):
    raise ConfigError(f"{name}={workdir!r} was trained on path {dict(weak.config.path)}, "
                      f"the strong run on {dict(run.config.path)}; they must agree.")
  if not method.weak_workdir and weak.step > run.step:
    raise ConfigError(f"method.weak_step={method.weak_step} is later than the strong "
                      f"model's checkpoint {run.step}; the weak model is an earlier one.")
  return weak


def w2sd_name(strength):
  return f"w2sd_l{float(strength):g}"


def w2sd_solutions(pipeline, strong_params, weak_params, x0, labels, strengths, interval,
                   solver, num_steps):
  """{"strong": Solution, "weak": ..., "w2sd_l<strength>": ...}: each model alone and
  W2SD at each reflection strength (on `interval`), conditional on labels (None:
  unconditional), from the noise x0 (B, ...)."""
  path = pipeline.path
  strong = complete(pipeline.fields(strong_params, labels), path)
  weak = complete(pipeline.fields(weak_params, labels), path)
  w2sd_run = jax.jit(lambda strength: solve(
      solver, None, path, x0, num_steps=num_steps,
      guidance=w2sd_guidance(strong, weak, path, strength, interval)))
  # One program for both models: jit over the parameters (Fields hold functions).
  plain = jax.jit(lambda params: solve(solver, complete(pipeline.fields(params, labels), path),
                                       path, x0, num_steps=num_steps))
  solutions = {"strong": plain(strong_params), "weak": plain(weak_params)}
  solutions.update({w2sd_name(s): w2sd_run(float(s)) for s in strengths})
  return solutions


def build_w2sd(config, run, stream, ev, kind) -> Task:
  del stream, kind  # Images only.
  weak = load_weak(config, run)
  strengths, interval = tuple(config.method.strengths), check_interval(config.method.interval)
  pipeline, n = run.pipeline, config.eval.num_samples
  labels = jnp.arange(n) % max(pipeline.num_classes, 1)
  cond = labels if pipeline.num_classes else None

  def init_params(key):
    del key  # The pair is the two trained models.
    return {"strong": run.params, "weak": weak.params}

  def frozen(params, key, shard, step, batch=None):
    """The constant 0: the engine trains something, and a zero gradient moves nothing
    (Adam's update of a zero gradient is exactly 0, the EMA decay is 0), so the
    checkpoint holds the pair as loaded, bit for bit (tests/test_acceleration_w2sd_config)."""
    del params, key, shard, step, batch
    return jnp.zeros(()), {}

  draw = jax.jit(lambda strong, weak, key: w2sd_solutions(
      pipeline, strong, weak, pipeline.source(key, n), cond, strengths, interval,
      config.sample.solver, config.sample.num_steps))

  def evaluate(params, key):
    solutions = draw(params["strong"], params["weak"], key)
    values = {"strong_step": run.step, "weak_step": weak.step}
    figures = {}
    for name, solution in solutions.items():
      values.update({f"{k}_{name}": v for k, v in ev.score(solution.x).items()})
      values[f"nfe_{name}"] = float(solution.nfe)
      values[f"rms_to_strong_{name}"] = float(jnp.sqrt(jnp.mean(
          (solution.x - solutions["strong"].x) ** 2)))
      figures[f"samples_{name}"] = ev.grid(solution.x, f"{name} (strong: step {run.step}, "
                                                       f"weak: step {weak.step})")
    return values, figures

  def sample(params, key):
    solutions = draw(params["strong"], params["weak"], key)
    x = solutions[w2sd_name(strengths[0])].x
    return ({"samples": np.asarray(parallel.to_host(x))},
            {"samples": ev.grid(x, f"W2SD lambda {strengths[0]:g}")})

  return Task(init_params=init_params, loss=frozen, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size,
              record={**pipeline_record(run.pipeline), "acceleration": "w2sd",
                      "weak": f"{weak.workdir} step {weak.step}"})


ACCELERATION_METHODS.register("w2sd", Method(
    check_w2sd, build_w2sd, ("weak_workdir", "weak_step", "strengths", "interval")))


def network_flops(apply_fn, params, x):
  """FLOPs of one call apply_fn(params, x, t, cond) on the batch x (XLA's cost analysis),
  with t = 0.5 and the null class."""
  cost = jax.jit(lambda p, x: apply_fn(p, x, jnp.full((x.shape[0],), 0.5),
                                       jnp.zeros((x.shape[0],), jnp.int32))
                 ).lower(params, x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan")))


def build_task(config) -> Task:
  """Builds the task; bad values and a bad source run fail here, before any workdir is
  touched."""
  check_keys(config, (Key("method.name", "name", names=ACCELERATION_METHODS.names),)
             + COMMON_KEYS)
  method = ACCELERATION_METHODS.get(config.method.name)
  unknown = sorted(set(config.method.keys()) - {"name", *method.options})
  if unknown:
    raise ConfigError(f"method.{unknown[0]} is not an option of method.name="
                      f"{config.method.name!r}; valid: {', '.join(method.options)}.")
  if config.source.kind not in method.kinds:
    raise ConfigError(f"method.name={config.method.name!r} takes source.kind in "
                      f"{method.kinds}; got source.kind={config.source.kind!r}.")
  method.check(config)
  kind = SOURCE_KINDS.get(config.source.kind)
  run = load_source(config, kind)
  build_pipeline(config, run.spec)  # The config's own sections, checked.
  return method.build(config, run, kind.stream(config, run), kind.evaluation(config, run),
                      kind)
