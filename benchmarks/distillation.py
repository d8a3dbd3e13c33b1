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
"""
import time

import jax
import numpy as np

from benchmarks import common
from configs.distillation import consistency_training, meanflow, teacher as teacher_config
from diffjax.distillation import build_student
from diffjax.pipeline import DataSpec, build_pipeline

SETTINGS = {"moons": (DataSpec((2,)), 4096), "digits": (DataSpec((8, 8, 1), 10), 256)}
STUDENTS = {"consistency": consistency_training, "flow_map": meanflow}
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
  common.write_results("distillation", figures, details, table, args.quick,
                       "python -m benchmarks.distillation" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
  main()
