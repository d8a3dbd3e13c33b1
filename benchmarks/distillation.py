"""Distillation: the throughput of one-step students against their many-step teacher.

  python -m benchmarks.distillation [--quick]

one_step_speedup_<data>_<student>: samples per second of a one-step student over the
teacher's 50-step DPM-Solver++(2M) (50 network evaluations) at the same batch, for the
moons MLP (width 128, depth 3, batch 4096) and the digits DiT (configs/images/digits.py,
batch 256), with the networks of the distillation configs (random weights: the time of a
network call does not depend on its values). Students: a consistency model (the teacher's
own network with its boundary parametrisation) and a flow map (MeanFlow / shortcut: the
network with its step input). Expected about 50x (one evaluation against fifty). The
teacher's 50-step Heun (100 evaluations) is reported beside it. Median of interleaved
rounds.

step_ratio_<data>_<method>: the time of one distribution-matching training step (every
player: generator, fake score and, for f-distill, the discriminator; `make_players_step`,
jitted) over the time of two teacher evaluations plus one generator step (the generator's
forward, backward and optimizer update), at the configs' batch, with a teacher of random
weights built in memory (`teacher_of_run`). The issue's goal is <= 1.3. A step evaluates
the teacher and the fake score on the noised generator samples, differentiates through the
generator, then fits the fake score to fresh generator samples (forward and backward of a
network as large as the teacher): about 5 network forwards and 2 backwards against the
reference's 3 and 1, so expect about 1.8.
"""
import dataclasses
import functools
import time

import jax
import numpy as np

from benchmarks import common
from configs.distillation import consistency_training, dmd, f_distill, meanflow
from configs.distillation import teacher as teacher_config
from diffjax import runs
from diffjax.distillation import build_student, distillation_task, teacher_of_run
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.train import create_train_state, make_players_step, make_train_step
from diffjax.train.loop import build_optimizers

SETTINGS = {"moons": (DataSpec((2,)), 4096), "digits": (DataSpec((8, 8, 1), 10), 256)}
STUDENTS = {"consistency": consistency_training, "flow_map": meanflow}
MATCHING = {"dmd": dmd, "f_distill": f_distill}
TEACHER_SAMPLERS = {"dpm_solver_pp_2m": 50, "heun": 50}


def _timed(fn, key):
  start = time.perf_counter()
  jax.block_until_ready(fn(key))
  return time.perf_counter() - start


def throughput(data, rounds):
  """{name: seconds per batch} of the teachers' samplers and the one-step students."""
  spec, batch = SETTINGS[data]
  teacher = build_pipeline(teacher_config.get_config(data), spec)
  teacher_params = teacher.model.init(jax.random.PRNGKey(0))
  labels = (jax.numpy.arange(batch) % spec.num_classes) if spec.num_classes else None
  runs = {}
  for solver, steps in TEACHER_SAMPLERS.items():
    pipeline = teacher.with_sampler(solver, steps)
    runs[f"teacher_{solver}_{steps}"] = jax.jit(
        lambda key, p=pipeline: p.generate(teacher_params, key, batch, labels).x)
  for name, module in STUDENTS.items():
    _, _, student = build_student(module.get_config(data))
    params = student.init_params(jax.random.PRNGKey(1))
    runs[f"student_{name}"] = jax.jit(
        lambda key, s=student, p=params: s.generate(p, key, batch, labels, 1).x)
  key = jax.random.PRNGKey(2)
  for fn in runs.values():   # compile
    _timed(fn, key)
  times = {name: [] for name in runs}
  for i in range(rounds):
    for name, fn in runs.items():
      times[name].append(_timed(fn, jax.random.fold_in(key, i)))
  return {name: float(np.median(t)) for name, t in times.items()}, batch


def random_teacher(data):
  """A `Teacher` of the data's teacher config with random weights (a `runs.Run` in memory)."""
  config = teacher_config.get_config(data)
  pipeline = build_pipeline(config, SETTINGS[data][0])
  params = pipeline.model.init(jax.random.PRNGKey(0))
  run = runs.Run("random weights", config, 0, 0, params, pipeline)
  return teacher_of_run(run, f"{data} teacher, random weights")


def _median_seconds(fns, args, rounds):
  """{name: median seconds} of jitted fns(*args[name]), interleaved, after a compile."""
  for name, fn in fns.items():
    jax.block_until_ready(fn(*args[name]))
  times = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(*args[name]))
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def step_times(data, method, rounds):
  """{"distillation_step", "two_teacher_evaluations", "generator_step"}: seconds of one
  distribution-matching step of `method` on `data` and of its reference parts."""
  teacher = random_teacher(data)
  config = MATCHING[method].get_config(data)
  if "teacher_samples" in config.method:   # The discriminator's real examples: a few.
    config.method.update(teacher_samples=256, teacher_steps=2)
  _, context, student = build_student(config, teacher)
  task = distillation_task(config, context, student, None, None)
  optimizers = build_optimizers(config, task, config.train.num_steps)
  key = jax.random.PRNGKey(3)
  prepare = student.phases[0].prepare if student.phases else None
  phase_context = None if prepare is None else prepare(student.init_params(key), key)
  players = [dataclasses.replace(
      p, optimizer=optimizers[p.name],
      loss=functools.partial(p.loss, context=phase_context) if prepare else p.loss)
             for p in student.players]
  state = create_train_state(student.init_params, players, key)
  step = jax.jit(make_players_step(players))
  batch = context.batch_size
  labels = context.random_labels(key, batch)
  x = context.source(key, batch)
  t = jax.random.uniform(key, (batch,))
  fields = teacher.fields(labels)
  teacher_calls = jax.jit(
      lambda x, t: (fields.evaluate(x, t).velocity, fields.evaluate(-x, 1 - t).velocity))
  direction = context.source(jax.random.fold_in(key, 1), batch)
  others = state.params

  def generator_loss(generator_params, key, shard, step_, batch_):
    del shard, step_, batch_
    params = dict(others, generator=generator_params)
    out = student.generate(params, key, batch, labels, 1).x
    return jax.numpy.mean(jax.numpy.sum((out * direction).reshape(batch, -1), -1)), {}

  generator_step = jax.jit(make_train_step(generator_loss, optimizers["generator"]))
  generator_state = create_train_state(lambda k: others["generator"],
                                       optimizers["generator"], key)
  return _median_seconds(
      {"distillation_step": step, "two_teacher_evaluations": teacher_calls,
       "generator_step": generator_step},
      {"distillation_step": (state, None, key), "two_teacher_evaluations": (x, t),
       "generator_step": (generator_state, None, key)}, rounds), batch


def main(argv=None):
  args = common.parse_args(__doc__, argv)
  rounds = 5 if args.quick else 20
  figures, details, rows = {}, {}, []
  for data in SETTINGS:
    times, batch = throughput(data, rounds)
    details[data] = {"batch": batch, "seconds_per_batch": times}
    reference = times["teacher_dpm_solver_pp_2m_50"]
    for name, seconds in times.items():
      rows.append((data, name, batch, batch / seconds, reference / seconds))
      if name.startswith("student_"):
        figures[f"one_step_speedup_{data}_{name[len('student_'):]}"] = reference / seconds
  table = common.markdown_table(
      ("data", "sampler", "batch", "samples/s", "speed-up over 50-step DPM-Solver++"), rows)
  step_rows = []
  for data in SETTINGS:
    for method in MATCHING:
      times, batch = step_times(data, method, rounds)
      reference = times["two_teacher_evaluations"] + times["generator_step"]
      ratio = times["distillation_step"] / reference
      figures[f"step_ratio_{data}_{method}"] = ratio
      details[f"step_{data}_{method}"] = {"batch": batch, "seconds": times}
      step_rows.append((data, method, batch, 1e3 * times["distillation_step"],
                        1e3 * times["two_teacher_evaluations"],
                        1e3 * times["generator_step"], ratio))
  table += "\n\n" + common.markdown_table(
      ("data", "method", "batch", "step ms", "2 teacher evaluations ms", "generator step ms",
       "ratio (goal <= 1.3)"), step_rows)
  common.write_results("distillation", figures, details, table, args.quick,
                       "python -m benchmarks.distillation" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
  main()
