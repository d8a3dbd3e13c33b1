"""The safety studies: several runs of `experiments.safety`, one table each.

  python -m experiments.safety_studies trojdiff --workdir=DIR --base=workdirs/guided_digits \
      --seeds=0,1,2 --class_steps=450
  python -m experiments.safety_studies unlearning --workdir=DIR --base=workdirs/guided_digits \
      --sfd=workdirs/sfd_study/sfd --seeds=0,1,2 --attack_steps=100,300
  python -m experiments.safety_studies sda --workdir=DIR --base=workdirs/guided_digits \
      --seeds=0,1,2 (or --seeds=0 --dda_starts=0.5,0.7,0.8)

trojdiff: the trojaned fine-tunes (in_class, out_of_distribution, image) and the clean one
(`configs/safety/trojdiff.py`): attack success rate, benign proxy FD and its ratio to the
clean fine-tune's of the same seed and steps, benign class accuracy; --class_steps resumes
the in_class and clean fine-tunes to that many steps (the cosine schedule then spans them).
unlearning: the erasing fine-tune (`configs/safety/erase.py`; --long_erase_steps adds a
separate, longer one), negative guidance on the base run and an SFD student as unlearned
models (share of class-7 samples read as 7, accuracy on the other classes, 100 samples per
class), then UnlearnDiffAtk (`configs/safety/unlearn_attack.py`) against each, and against
the base run as the control; --attack_steps lists the attack's stages (each resumes the
last; evaluations every first-stage steps). sda: `configs/safety/sda.py` for each seed and
DDA start time (--dda_starts), source / DDA / SDA accuracy on digits-C and whether
source < DDA < SDA (table sda_study, or dda_start_study for several starts). Each --seeds
seed is the runs' config.seed and the key of the guided and SFD samples (the SFD student
itself is one training run). Each run lives in its own subdirectory, suffixed _seed<S> for seeds
other than 0 (rerunning resumes it); --steps, --batch_size, --num_samples and
--learning_rate replace the fine-tunes' training settings; --tiny runs the :tiny configs.
Tables: <study>.md and <study>.json in --workdir, a row per seed and mean ± std over them.
"""
import argparse
import copy

import jax
import ml_collections
import numpy as np

import experiments
from configs.safety import erase as erase_config
from configs.safety import sda as sda_config
from configs.safety import trojdiff as trojdiff_config
from configs.safety import unlearn_attack as attack_config
from diffjax import runs, tables
from diffjax.distillation.sfd import forgetting_metrics
from diffjax.image_metrics import digits_classifier, digits_reference_images
from diffjax.train import storage
from diffjax.train.workdir import read_metrics

TROJAN_VARIANTS = ("in_class", "out_of_distribution", "image")


def _path(workdir, name):
  return str(storage.workdir_path(workdir) / name)


def _variant(name, tiny):
  return name + (",tiny" if tiny else "")


def _fine_tune(config, args):
  config.base.workdir = args.base
  if not args.tiny:
    steps = args.steps or config.train.num_steps
    config.train.update(num_steps=steps, eval_every=steps, checkpoint_every=steps,
                        batch_size=args.batch_size or config.train.batch_size)
    config.eval.num_samples = args.num_samples or config.eval.num_samples
    config.optim.learning_rate = args.learning_rate or config.optim.learning_rate
  return config


def _seeded(name, seed):
  return name if seed == 0 else f"{name}_seed{seed}"


def seed_rows(label, seeds, values):
  """Table rows [*label, seed, *values[i]] for each seed (3 decimals, None as "-"), then,
  for several seeds, [*label, "mean ± std", ...] over them (a column with a None: "-")."""
  rows = [list(label) + [seed] + ["-" if v is None else f"{v:.3f}" for v in row]
          for seed, row in zip(seeds, values)]
  if len(seeds) > 1:
    rows.append(list(label) + ["mean ± std"] + [
        "-" if None in column else tables.mean_std(column) for column in zip(*values)])
  return rows


def _run(config, workdir, stages=None, seed=0, every=None):
  """Trains `config` (config.seed = seed) in `workdir` to each of `stages` (numbers of
  steps; default: its own) in turn, each resuming the last, evaluating every `every` steps
  (default: at the end of each stage). Returns {step: that step's evaluation record}."""
  stages = stages or [config.train.num_steps]
  for steps in stages:
    staged = copy.deepcopy(config)
    staged.seed = seed
    staged.train.update(num_steps=steps, eval_every=every or steps,
                        checkpoint_every=every or steps)
    staged.lock()
    experiments.run(staged, workdir)
  return {r["step"]: r for r in read_metrics(workdir, null_as_nan=True)}


def trojdiff_study(args):
  """Attack success and benign quality of each trojan target against the clean fine-tune,
  for each seed (and the in_class and clean fine-tunes resumed to --class_steps)."""
  results = {}
  for seed in args.seeds:
    for variant in TROJAN_VARIANTS + ("clean",):
      config = _fine_tune(trojdiff_config.get_config(_variant(variant, args.tiny)), args)
      stages = [config.train.num_steps]
      if args.class_steps and variant in ("in_class", "clean"):
        stages.append(args.class_steps)
      records = _run(config, _path(args.workdir, _seeded(f"trojdiff_{variant}", seed)),
                     stages, seed)
      for steps in stages:
        results[(variant, steps, seed)] = records[steps]
  keys = ("attack_success_rate", "benign_frechet_proxy", "fd_ratio", "benign_class_accuracy")
  for (variant, steps, seed), record in results.items():
    record["fd_ratio"] = (record["benign_frechet_proxy"]
                          / results[("clean", steps, seed)]["benign_frechet_proxy"])
  rows = []
  for variant, steps in dict.fromkeys((v, n) for v, n, _ in results):
    rows += seed_rows([variant, steps], args.seeds,
                      [[results[(variant, steps, seed)][k] for k in keys]
                       for seed in args.seeds])
  print(tables.write_table(
      args.workdir, "trojdiff_study", ["fine-tune", "steps", "seed", "attack success rate",
                                       "benign proxy FD", "FD / clean FD",
                                       "benign class accuracy"], rows,
      {f"{v}_{n}_seed{s}": r for (v, n, s), r in results.items()},
      f"Fine-tunes of {args.base}; FD / clean FD against the clean fine-tune of the same "
      "seed and steps; the clean row's attack success is the share of its samples from the "
      "trojan noise that hit the in_class target; std: the sample std over seeds."))


def _forgetting(images, labels, forget):
  """forgetting_metrics of class-conditional samples against the test digits."""
  reference, reference_labels = digits_reference_images("test")
  return forgetting_metrics(np.clip(np.asarray(images), -1, 1), labels, forget, reference,
                            reference_labels, digits_classifier())


def _negative_forgetting(base, forget, per_class, scale, negative_scale, seed=0):
  """forgetting_metrics of the base run under negative guidance away from `forget`
  (samples drawn with key `seed`)."""
  section = ml_collections.ConfigDict(dict(method="negative", scale=scale,
                                           negative_scale=negative_scale,
                                           negative_class=forget))
  labels = np.repeat(np.arange(10), per_class).astype(np.int32)
  images = jax.jit(lambda key: base.sample(key, len(labels), labels, guidance=section))(
      jax.random.PRNGKey(seed))
  return _forgetting(images, labels, forget)


def forgetting_metrics_of_student(workdir, forget, per_class, seed=0):
  """forgetting_metrics of an SFD student's one-step samples (drawn with key `seed`)."""
  from diffjax.distillation import load_student   # pylint: disable=g-import-not-at-top
  student, params, _ = load_student(workdir)
  labels = np.repeat(np.arange(10), per_class).astype(np.int32)
  images = jax.jit(lambda key: student.generate(params, key, len(labels), labels).x)(
      jax.random.PRNGKey(seed))
  return _forgetting(images, labels, forget)


def _unlearned_models(args, erase, base, seed):
  """{model: (its forgetting metrics or None, attack subject kind or None, the subject's
  workdir, the attack's run name)} for one seed; the fine-tunes are trained here."""
  forget, per_class = erase.erase.forget_class, 10 if args.tiny else 100
  erase_dir = _path(args.workdir, _seeded("erase_7", seed))
  steps = erase.train.num_steps
  models = {"erased (fine-tune)": (_run(erase, erase_dir, seed=seed)[steps], "run",
                                   erase_dir, "erased")}
  if args.long_erase_steps:
    longer = args.long_erase_steps
    workdir = _path(args.workdir, _seeded(f"erase_7_{longer}steps", seed))
    models[f"erased (fine-tune), {longer} steps"] = (
        _run(erase, workdir, [longer], seed)[longer], None, None, None)
  scales = attack_config.get_config(_variant("run", args.tiny)).subject
  models["negative guidance"] = (
      _negative_forgetting(base, forget, per_class, scales.scale, scales.negative_scale, seed),
      "negative_guidance", args.base, "negative")
  if args.sfd:
    models["SFD student"] = (forgetting_metrics_of_student(args.sfd, forget, per_class, seed),
                             "sfd", args.sfd, "sfd")
  models["original (control)"] = (None, "run", args.base, "original")
  return models


def unlearning_study(args):
  """Forgetting of each unlearned model, then UnlearnDiffAtk against each (and the base),
  for each seed."""
  erase = _fine_tune(erase_config.get_config("tiny" if args.tiny else None), args)
  forget, base = erase.erase.forget_class, runs.load(args.base)
  results = {}
  for seed in args.seeds:
    for model, (forgetting, kind, workdir, name) in _unlearned_models(
        args, erase, base, seed).items():
      attacked = {}
      if kind is not None:
        config = attack_config.get_config(_variant(kind, args.tiny))
        config.subject.workdir = workdir
        stages = (args.attack_steps if args.attack_steps and not args.tiny
                  else [config.train.num_steps])
        attacked = _run(config, _path(args.workdir, _seeded(f"attack_{name}", seed)), stages,
                        seed, every=stages[0])
      results[(model, seed)] = dict(forgetting=forgetting, attack=attacked)
  attack_steps = sorted({n for r in results.values() for n in r["attack"]})

  def values(result):
    forgetting, attacked = result["forgetting"], result["attack"]
    before = attacked[attack_steps[0]]["forget_share_before_attack"] if attacked else None
    share = before if forgetting is None else forgetting["forget_share"]
    return ([share, None if forgetting is None else forgetting["kept_accuracy"], before]
            + [attacked[n]["forget_share_after_attack"] if n in attacked else None
               for n in attack_steps])

  rows = []
  for model in dict.fromkeys(m for m, _ in results):
    rows += seed_rows([model], args.seeds, [values(results[(model, seed)])
                                            for seed in args.seeds])
  print(tables.write_table(
      args.workdir, "unlearning_study",
      ["model", "seed", f"share of class-{forget} samples read as {forget}",
       "accuracy, other classes", "attack: share before"]
      + [f"attack: share after {n} steps" for n in attack_steps], rows,
      {f"{model} seed{seed}": r for (model, seed), r in results.items()},
      "Unlearning columns: 100 samples per class (erased: its evaluation's samples); attack "
      "columns: samples of the forgotten class with its own embedding (before) and with the "
      "adversarial one (after); the SFD student is one training run, sampled with each "
      "seed; std: the sample std over seeds."))


def sda_study(args):
  """Source / DDA / SDA accuracy on digits-C (`configs/safety/sda.py`) for each seed and
  each DDA start time (--dda_starts), and whether source < DDA < SDA holds."""
  results, default = {}, sda_config.get_config().dda.start
  for start in args.dda_starts or [default]:
    for seed in args.seeds:
      config = sda_config.get_config("tiny" if args.tiny else None)
      config.base.workdir, config.dda.start = args.base, start
      name = "sda" if start == default else f"sda_start{start}"
      results[(start, seed)] = _run(config, _path(args.workdir, _seeded(name, seed)),
                                    seed=seed)[config.train.num_steps]
  conditions = [key[len("source_"):] for key in next(iter(results.values()))
                if key.startswith("source_")]
  rows = []
  for condition in conditions:
    for start in dict.fromkeys(s for s, _ in results):
      values = [[results[(start, seed)][f"{m}_{condition}"] for m in ("source", "dda", "sda")]
                for seed in args.seeds]
      ordered = [source < dda < sda for source, dda, sda in values]
      marks = ["yes" if o else "no" for o in ordered]
      if len(values) > 1:
        marks.append(f"{sum(ordered)} of {len(ordered)}")
      rows += [row + [mark] for row, mark in
               zip(seed_rows([condition, start], args.seeds, values), marks)]
  name = "sda_study" if len(args.dda_starts) < 2 else "dda_start_study"
  print(tables.write_table(
      args.workdir, name, ["corruption", "DDA start", "seed", "source", "DDA", "SDA",
                           "source < DDA < SDA"], rows,
      {f"start{start}_seed{seed}": r for (start, seed), r in results.items()},
      f"Classifier accuracy on corrupted test digits, base run {args.base}; DDA start: "
      "the time the inputs are noised to (t = 0 noise, 1 data); std: the sample std over "
      "seeds (each seed draws the synthetic set, the projection and corruption noise and "
      "the fine-tune's batches; the test digits are the same 300)."))


def _ints(text):
  return [int(part) for part in text.split(",")]


def _floats(text):
  return [float(part) for part in text.split(",")]


STUDIES = {"trojdiff": trojdiff_study, "unlearning": unlearning_study, "sda": sda_study}


def main(argv=None):
  parser = argparse.ArgumentParser(description="Safety studies.")
  parser.add_argument("study", choices=sorted(STUDIES))
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--base", default="workdirs/guided_digits",
                      help="the class-conditional digits run (configs/guidance/digits.py)")
  parser.add_argument("--sfd", default="", help="unlearning: an SFD student's workdir")
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--steps", type=int, default=0)
  parser.add_argument("--batch_size", type=int, default=0)
  parser.add_argument("--num_samples", type=int, default=0)
  parser.add_argument("--learning_rate", type=float, default=0.0)
  parser.add_argument("--seeds", type=_ints, default=[0],
                      help="comma-separated seeds (config.seed and sampling keys)")
  parser.add_argument("--class_steps", type=int, default=0,
                      help="trojdiff: resume in_class and clean to this many steps")
  parser.add_argument("--long_erase_steps", type=int, default=0,
                      help="unlearning: also a separate erasing fine-tune this long")
  parser.add_argument("--attack_steps", type=_ints, default=[],
                      help="unlearning: the attack's stages, e.g. 100,300")
  parser.add_argument("--dda_starts", type=_floats, default=[],
                      help="sda: DDA start times (default: the config's 0.5)")
  STUDIES[(args := parser.parse_args(argv)).study](args)


if __name__ == "__main__":
  main()
