"""Distillation studies: runs of `experiments.distillation` and their tables in --workdir.

  python -m experiments.distillation_studies nfe --workdir=DIR [--tiny]
      [--data=moons,eight_gaussians] [--seeds=3]

nfe  On each data set: trains the flow-matching teacher (`configs/distillation/teacher.py`)
     and the students of consistency training, consistency distillation (of that teacher),
     MeanFlow and shortcut models, each an ordinary run in its own subdirectory (rerunning
     resumes it; the wall time of a run trained from scratch is kept in wall_times.json).
     Then scores eval.num_samples samples of the students at 1, 2 and 4 steps and of the
     teacher at 1, 2, 4, 8, 50 and 100 steps of Heun and DPM-Solver++(2M) against held-out
     target samples: W2 and energy distance, mean over --seeds sampling seeds, beside the
     W2 floor (fresh target draws against the same reference). Writes nfe.md and nfe.json.
--tiny runs the configs' seconds-long versions.
"""
import argparse
import json
import time

import jax
import numpy as np

import experiments
from configs.distillation import (consistency_distillation, consistency_training, meanflow,
                                  shortcut, teacher as teacher_config)
from diffjax import metrics, runs
from diffjax.distillation import load_student
from diffjax.distillation.context import DATA_SOURCES
from diffjax.train import storage

STUDENTS = {"consistency training": consistency_training,
            "consistency distillation": consistency_distillation,
            "MeanFlow": meanflow, "shortcut": shortcut}
STUDENT_STEPS = (1, 2, 4)
TEACHER_SAMPLERS = {"Heun": "heun", "DPM-Solver++(2M)": "dpm_solver_pp_2m"}
TEACHER_STEPS = (1, 2, 4, 8, 50, 100)
REFERENCE = ("Heun", 100)


def _train(config, workdir, walls):
  """Trains (or resumes) the run; records its wall time when it starts from scratch."""
  config.lock()
  fresh = not storage.workdir_path(workdir).is_dir()
  start = time.perf_counter()
  experiments.run(config, workdir)
  if fresh:
    walls[workdir.rsplit("/", 1)[-1]] = round(time.perf_counter() - start, 1)


def _scores(generate, reference, seeds):
  """(mean W2, mean energy distance, NFE) of generate(key) -> Solution over seeds."""
  w2, energy, nfe = [], [], 0
  for seed in range(seeds):
    solution = generate(jax.random.PRNGKey(1000 + seed))
    samples, nfe = np.asarray(solution.x), solution.nfe
    w2.append(metrics.wasserstein2(samples, reference))
    energy.append(metrics.energy_distance(samples, reference))
  return float(np.mean(w2)), float(np.mean(energy)), int(nfe)


def nfe_rows(study, data, num_samples, seeds, tiny, walls):
  """The NFE table's rows of one data set (training what is missing)."""
  suffix = ",tiny" if tiny else ""
  teacher_dir = str(storage.workdir_path(study) / f"teacher_{data}")
  _train(teacher_config.get_config(data + suffix), teacher_dir, walls)
  student_dirs = {}
  for name, module in STUDENTS.items():
    config = module.get_config(data + suffix)
    if config.teacher.kind == "run":
      config.teacher.workdir = teacher_dir
    student_dirs[name] = str(storage.workdir_path(study) /
                             f"{config.method.name}_{data}")
    _train(config, student_dirs[name], walls)

  config = consistency_training.get_config(data + suffix)
  source = DATA_SOURCES.get(config.data.name)(config.data, None)
  reference, _ = source.reference(config.eval.reference_seed, num_samples)
  floor, floor_std = metrics.w2_floor(source.draw, reference, num_draws=5,
                                      seed=config.eval.reference_seed + 1)
  teacher = runs.load(teacher_dir)
  rows = []
  for label, solver in TEACHER_SAMPLERS.items():
    for steps in TEACHER_STEPS:
      run = teacher.with_sampler(solver, steps)
      generate = jax.jit(lambda key, run=run: run.generate(key, num_samples))
      w2, energy, nfe = _scores(generate, reference, seeds)
      rows.append((data, f"teacher, {label}", steps, nfe, w2, energy))
  for name, workdir in student_dirs.items():
    student, params, _ = load_student(workdir)
    for steps in STUDENT_STEPS:
      generate = jax.jit(lambda key, s=steps, student=student, params=params:
                         student.generate(params, key, num_samples, None, s))
      w2, energy, nfe = _scores(generate, reference, seeds)
      rows.append((data, name, steps, nfe, w2, energy))
  return rows, (floor, floor_std)


def nfe_study(study, datasets, num_samples=2000, seeds=3, tiny=False):
  """The NFE-vs-quality table (module docstring) in `study`/nfe.md and nfe.json."""
  walls_path = storage.workdir_path(study) / "wall_times.json"
  walls = json.loads(storage.read_text(walls_path)) if walls_path.exists() else {}
  rows, floors = [], {}
  for data in datasets:
    data_rows, floors[data] = nfe_rows(study, data, num_samples, seeds, tiny, walls)
    storage.write_text(walls_path, json.dumps(walls, indent=2) + "\n")
    reference_w2 = next(r[4] for r in data_rows
                        if r[1] == f"teacher, {REFERENCE[0]}" and r[2] == REFERENCE[1])
    rows += [r + (r[4] / reference_w2,) for r in data_rows]
  header = ("data", "sampler", "steps", "NFE", "W2", "energy distance",
            f"W2 / teacher {REFERENCE[0]} {REFERENCE[1]} steps")
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r)
            + " |" for r in rows]
  floor_text = "; ".join(f"{d}: {m:.3f} ± {s:.3f}" for d, (m, s) in floors.items())
  text = (f"W2 and energy distance of {num_samples} samples to as many held-out target "
          f"samples, mean over {seeds} sampling seeds. W2 floor (fresh target draws): "
          f"{floor_text}.\n\n" + "\n".join(lines) + "\n")
  storage.write_text(storage.workdir_path(study) / "nfe.md", text)
  storage.write_text(storage.workdir_path(study) / "nfe.json", json.dumps(
      {"rows": rows, "floors": floors, "wall_seconds": walls}, indent=2) + "\n")
  print(text)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("study", choices=("nfe",))
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--data", default="moons,eight_gaussians")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--num_samples", type=int, default=2000)
  args = parser.parse_args(argv)
  nfe_study(args.workdir, args.data.split(","), args.num_samples, args.seeds, args.tiny)


if __name__ == "__main__":
  main()
