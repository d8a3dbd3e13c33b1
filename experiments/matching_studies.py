"""Distribution-matching studies: several runs of `experiments.distillation`, one table each.

  python -m experiments.matching_studies imbalanced --workdir=DIR   # f-divergences, 3 seeds
  python -m experiments.matching_studies disback --workdir=DIR      # DisBack vs DMD, 3 seeds
  python -m experiments.matching_studies digits --workdir=DIR \
      [--teacher=workdirs/guided_digits]                            # one-step digits
  python -m experiments.matching_studies sfd --workdir=DIR \
      [--teacher=workdirs/guided_digits]                            # class 7 forgotten

Each run is an ordinary run in its own subdirectory (rerunning resumes it); --tiny runs the
configs' seconds-long versions; --generator_steps=N gives every run's generator N training
steps instead of its config's (DisBack's fit and degradation steps come on top). Tables: <study>.md and <study>.json in --workdir; the
digits studies also write image grids there. Teachers: the exact oracle of the imbalanced
ring (its own 50-step Heun samples are the reference row), and for the digits a trained
class-conditional `configs/guidance/digits.py` run.
"""
import argparse

import jax
import numpy as np

import experiments
from configs.distillation import disback as disback_config
from configs.distillation import dmd as dmd_config
from configs.distillation import f_distill as f_distill_config
from configs.distillation import sfd as sfd_config
from diffjax import metrics as metrics_lib
from diffjax.distillation import build_context, load_student, mode_coverage
from diffjax.distillation.disback import backtracking_start
from diffjax.distillation.sfd import forgetting_metrics
from diffjax.distillation.teachers import mixture_of
from diffjax.image_metrics import digits_classifier, digits_reference_images, digits_scores
from diffjax.image_plots import sample_grid_figure
from diffjax import tables
from diffjax.train import storage
from diffjax.train.workdir import read_metrics
from diffjax.train.writer import figure_to_png

DIVERGENCES = ("reverse_kl", "forward_kl", "jensen_shannon")
LOW_MODES = (5, 6, 7)   # The imbalanced ring's three lightest modes: 0.05, 0.03, 0.02.


def _run(config, workdir):
  config.lock()
  experiments.run(config, workdir)
  return read_metrics(workdir, null_as_nan=True)


def _variant(name, tiny):
  return name + (",tiny" if tiny else "")


def _mean_std(values, digits=3):
  values = np.asarray(values, np.float64)
  spread = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{values.mean():.{digits}f} ± {spread:.{digits}f}"


def _path(workdir, name):
  return str(storage.workdir_path(workdir) / name)


def _teacher_heun(config, seed):
  """W2, energy distance and mode shares of the exact teacher's 50-step Heun samples."""
  context = build_context(config)
  n = config.eval.num_samples
  reference, _ = context.data.reference(config.eval.reference_seed, n)
  x = np.asarray(context.teacher.sample(jax.random.PRNGKey(seed), n, solver="heun",
                                        num_steps=50).x)
  coverage = mode_coverage(x, mixture_of(context.teacher.target))
  return {"w2_1step": metrics_lib.wasserstein2(x, reference),
          "energy_distance_1step": metrics_lib.energy_distance(x, reference),
          **{f"{k}_1step": v for k, v in coverage.metrics().items()}}


def _budget(config, generator_steps):
  """train.num_steps (DisBack: its generator's steps) = generator_steps when given."""
  if generator_steps:
    if config.method.name == "disback":
      disback_config.set_generator_steps(config, generator_steps)
    else:
      config.train.num_steps = generator_steps
  return config


def imbalanced_study(workdir, tiny=False, seeds=(0, 1, 2), generator_steps=None, **_):
  """f_distill with reverse KL, forward KL and Jensen-Shannon on the imbalanced ring's
  exact oracle: W2, energy distance and mode coverage of the one-step students against
  exact draws, beside the teacher's own 50-step Heun samples."""
  results = {}
  for divergence in DIVERGENCES:
    for seed in seeds:
      config = f_distill_config.get_config(_variant("imbalanced", tiny))
      config.method.divergence = divergence
      config.seed = seed
      _budget(config, generator_steps)
      results[(divergence, seed)] = _run(config, _path(workdir, f"{divergence}_seed{seed}"))[-1]
  config = f_distill_config.get_config(_variant("imbalanced", tiny))
  for seed in seeds:
    results[("teacher_heun50", seed)] = _teacher_heun(config, seed)
  weights = np.asarray(mixture_of(build_context(config).teacher.target).weights)
  rows = []
  for name in DIVERGENCES + ("teacher_heun50",):
    runs = [results[(name, s)] for s in seeds]
    low = [sum(r[f"mode_share_{k}_1step"] for k in LOW_MODES) for r in runs]
    rows.append([name, _mean_std([r["w2_1step"] for r in runs]),
                 _mean_std([r["energy_distance_1step"] for r in runs], 4),
                 _mean_std([r["mode_total_variation_1step"] for r in runs]),
                 _mean_std([r["modes_covered_1step"] for r in runs], 1), _mean_std(low)]
                + [_mean_std([r[f"mode_share_{k}_1step"] for r in runs]) for k in range(8)])
  best = min(DIVERGENCES, key=lambda d: np.mean([results[(d, s)]["w2_1step"] for s in seeds]))
  ratio = (np.mean([results[(best, s)]["w2_1step"] for s in seeds]) /
           np.mean([results[("teacher_heun50", s)]["w2_1step"] for s in seeds]))
  header = (["method", "W2", "energy distance", "mode TV", "modes covered",
             f"share of modes {LOW_MODES} (weight {weights[list(LOW_MODES)].sum():.2f})"]
            + [f"mode {k} ({weights[k]:.2f})" for k in range(8)])
  _write_table(workdir, "imbalanced_study", header, rows,
               {f"{n}_seed{s}": r for (n, s), r in results.items()},
               f"One-step students vs the exact teacher's 50-step Heun samples, mean ± std "
               f"over seeds {list(seeds)}; best student {best}: W2 {ratio:.2f}x the "
               "teacher's.")


def _generator_curve(records, offset):
  return [(r["step"] - offset, r["w2_1step"]) for r in records
          if "w2_1step" in r and r["step"] > offset]


def disback_study(workdir, tiny=False, seeds=(0, 1, 2), generator_steps=None, **_):
  """DisBack against plain DMD (reverse KL) on the imbalanced ring: generator steps to
  reach the plain method's final W2."""
  rows, record = [], {}
  for seed in seeds:
    plain = dmd_config.get_config(_variant("imbalanced", tiny))
    back = disback_config.get_config(_variant("imbalanced", tiny))
    for config in (plain, back):
      config.seed = seed
      _budget(config, generator_steps)
      config.train.eval_every = max(config.train.num_steps // 40, 1) if tiny else 250
    offset = backtracking_start(back.method, exact=True)
    curves = {"dmd": _generator_curve(_run(plain, _path(workdir, f"dmd_seed{seed}")), 0),
              "disback": _generator_curve(_run(back, _path(workdir, f"disback_seed{seed}")),
                                          offset)}
    final_step, target = curves["dmd"][-1]
    reach = {name: next((step for step, w2 in curve if w2 <= target), None)
             for name, curve in curves.items()}
    ratio = None if reach["disback"] is None else reach["disback"] / final_step
    record[f"seed{seed}"] = {"curves": curves, "target_w2": target, "reach": reach,
                             "ratio": ratio, "overhead_steps": offset}
    rows.append([seed, f"{target:.3f}", final_step, reach["dmd"], reach["disback"],
                 "-" if ratio is None else f"{ratio:.2f}", f"{curves['disback'][-1][1]:.3f}",
                 offset])
  header = ["seed", "DMD final W2", "DMD generator steps", "DMD first reaches it at",
            "DisBack reaches it at", "ratio DisBack / DMD", "DisBack final W2",
            "DisBack steps before backtracking (fit + degrade)"]
  _write_table(workdir, "disback_study", header, rows, record,
               "Generator steps (DisBack: backtracking steps only) until the one-step "
               "student's W2 first falls to DMD's final W2 (evaluations every 250 steps).")


def _grid(workdir, name, images, title):
  storage.write_bytes(storage.workdir_path(workdir) / f"{name}.png",
                      figure_to_png(sample_grid_figure(images, num_columns=10, title=title)))


def _class_images(generate, key, per_class):
  """(images (10 per_class, 8, 8, 1) ordered class by class, labels)."""
  labels = np.repeat(np.arange(10), per_class).astype(np.int32)
  return np.asarray(jax.device_get(generate(key, labels))), labels


def _student_generate(workdir):
  student, params, _ = load_student(workdir)
  return jax.jit(lambda key, labels: student.generate(params, key, labels.shape[0], labels).x)


def _teacher_generate(teacher_workdir, num_steps=50):
  from diffjax import runs   # pylint: disable=g-import-not-at-top
  run = runs.load(teacher_workdir).with_sampler("heun", num_steps)
  return jax.jit(lambda key, labels: run.sample(key, labels.shape[0], labels))


def digits_study(workdir, tiny=False, teacher="workdirs/guided_digits", per_class=100,
                 generator_steps=None, **_):
  """One-step digits students (f_distill with Jensen-Shannon, DMD) against the teacher's
  50-step Heun samples: proxy Fréchet distance and class accuracy; image grids."""
  generators = {"teacher_heun50": _teacher_generate(teacher)}
  for name, module, divergence in (("f_distill_js", f_distill_config, "jensen_shannon"),
                                   ("dmd", dmd_config, None)):
    config = module.get_config(_variant("digits", tiny))
    config.teacher.workdir = teacher
    if divergence:
      config.method.divergence = divergence
    _budget(config, generator_steps)
    _run(config, _path(workdir, name))
    generators[name] = _student_generate(_path(workdir, name))
  rows, record = [], {}
  for name, generate in generators.items():
    images, labels = _class_images(generate, jax.random.PRNGKey(0), per_class)
    scores = digits_scores(images, labels, "digits")
    record[name] = scores
    rows.append([name, f"{scores['frechet_proxy_digits']:.2f}",
                 f"{scores['accuracy_digits']:.3f}"])
    _grid(workdir, f"digits_{name}", images[::per_class // 10 or 1], name)
  _write_table(workdir, "digits_study", ["sampler", "proxy FD", "class accuracy"], rows,
               record, f"{per_class} samples per class; one step for the students.")


def sfd_study(workdir, tiny=False, teacher="workdirs/guided_digits", per_class=100,
              generator_steps=None, **_):
  """SFD with class 7 forgotten: how often the classifier still sees a 7 among the
  samples for 7, accuracy and proxy FD on the nine kept classes, against the teacher."""
  config = sfd_config.get_config(_variant("digits", tiny))
  config.teacher.workdir = teacher
  _budget(config, generator_steps)
  forget = config.method.forget_class
  _run(config, _path(workdir, "sfd"))
  reference, reference_labels = digits_reference_images("test")
  rows, record = [], {}
  for name, generate in (("teacher_heun50", _teacher_generate(teacher)),
                         ("sfd", _student_generate(_path(workdir, "sfd")))):
    images, labels = _class_images(generate, jax.random.PRNGKey(0), per_class)
    scores = forgetting_metrics(images, labels, forget, reference, reference_labels,
                                digits_classifier())
    record[name] = scores
    rows.append([name, f"{scores['forget_share']:.3f}", f"{scores['kept_accuracy']:.3f}",
                 f"{scores['kept_frechet']:.2f}"])
    _grid(workdir, f"sfd_{name}", images[::per_class // 10 or 1], name)
  _write_table(workdir, "sfd_study", ["sampler", f"share of class-{forget} samples "
                                      f"classified {forget}", "accuracy, other classes",
                                      "proxy FD, other classes"], rows, record,
               f"{per_class} samples per class; the student in one step.")


def _write_table(workdir, name, header, rows, record, caption):
  print(tables.write_table(workdir, name, header, rows, record, caption))


STUDIES = {"imbalanced": imbalanced_study, "disback": disback_study, "digits": digits_study,
           "sfd": sfd_study}


def main(argv=None):
  parser = argparse.ArgumentParser(description="Distribution-matching studies.")
  parser.add_argument("study", choices=sorted(STUDIES))
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--teacher", default="workdirs/guided_digits",
                      help="digits and sfd studies: the class-conditional digits run")
  parser.add_argument("--generator_steps", type=int, default=0,
                      help="the generator's training steps in every run (0: the configs')")
  args = parser.parse_args(argv)
  STUDIES[args.study](args.workdir, tiny=args.tiny, teacher=args.teacher,
                      generator_steps=args.generator_steps or None)


if __name__ == "__main__":
  main()
