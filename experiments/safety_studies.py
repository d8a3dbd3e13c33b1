"""The safety studies: several runs of `experiments.safety`, one table each.

  python -m experiments.safety_studies trojdiff --workdir=DIR --base=workdirs/guided_digits
  python -m experiments.safety_studies unlearning --workdir=DIR --base=workdirs/guided_digits \
      --sfd=workdirs/sfd_study/sfd

trojdiff: the trojaned fine-tunes (in_class, out_of_distribution, image) and the clean one
(`configs/safety/trojdiff.py`): attack success rate, benign proxy FD and its ratio to the
clean fine-tune's, benign class accuracy. unlearning: the erasing fine-tune
(`configs/safety/erase.py`), negative guidance on the base run and an SFD student as
unlearned models (share of class-7 samples read as 7, accuracy on the other classes, 100
samples per class), then UnlearnDiffAtk (`configs/safety/unlearn_attack.py`) against
each, and against the base run as the control. Each run lives in its own subdirectory
(rerunning resumes it); --steps, --batch_size, --num_samples and --learning_rate replace
the fine-tunes' (and --attack_steps the attack's) training steps; --tiny runs the :tiny
configs. Tables: <study>.md and <study>.json in --workdir.
"""
import argparse

import jax
import ml_collections
import numpy as np

import experiments
from configs.safety import erase as erase_config
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


def _run(config, workdir):
  config.lock()
  experiments.run(config, workdir)
  return read_metrics(workdir, null_as_nan=True)[-1]


def trojdiff_study(args):
  """Attack success and benign quality of each trojan target against the clean fine-tune."""
  results = {}
  for variant in TROJAN_VARIANTS + ("clean",):
    config = _fine_tune(trojdiff_config.get_config(_variant(variant, args.tiny)), args)
    results[variant] = _run(config, _path(args.workdir, f"trojdiff_{variant}"))
  clean = results["clean"]["benign_frechet_proxy"]
  rows = [[v, f"{r['attack_success_rate']:.3f}", f"{r['benign_frechet_proxy']:.2f}",
           f"{r['benign_frechet_proxy'] / clean:.2f}", f"{r['benign_class_accuracy']:.3f}"]
          for v, r in results.items()]
  print(tables.write_table(
      args.workdir, "trojdiff_study", ["fine-tune", "attack success rate",
                                       "benign proxy FD", "FD / clean FD",
                                       "benign class accuracy"], rows, results,
      f"Fine-tunes of {args.base}; one seed; the clean row's attack success is the share of "
      "its samples from the trojan noise that hit the in_class target."))


def _negative_forgetting(base, forget, per_class, scale, negative_scale):
  """forgetting_metrics of the base run under negative guidance away from `forget`."""
  section = ml_collections.ConfigDict(dict(method="negative", scale=scale,
                                           negative_scale=negative_scale,
                                           negative_class=forget))
  labels = np.repeat(np.arange(10), per_class).astype(np.int32)
  images = np.asarray(jax.jit(lambda key: base.sample(key, len(labels), labels,
                                                      guidance=section))(
      jax.random.PRNGKey(0)))
  reference, reference_labels = digits_reference_images("test")
  return forgetting_metrics(np.clip(images, -1, 1), labels, forget, reference,
                            reference_labels, digits_classifier())


def unlearning_study(args):
  """Forgetting of each unlearned model, then UnlearnDiffAtk against each (and the base)."""
  erase = _fine_tune(erase_config.get_config("tiny" if args.tiny else None), args)
  erased = _run(erase, _path(args.workdir, "erase_7"))
  forget = erase.erase.forget_class
  attack = attack_config.get_config(_variant("run", args.tiny))
  negative = _negative_forgetting(runs.load(args.base), forget, 10 if args.tiny else 100,
                                  attack.subject.scale, attack.subject.negative_scale)
  record = {"erased": erased, "negative_guidance": negative}
  rows = [["erased (fine-tune)", erased["forget_share"], erased["kept_accuracy"]],
          ["negative guidance", negative["forget_share"], negative["kept_accuracy"]]]
  subjects = [("erased", "run", _path(args.workdir, "erase_7")),
              ("negative", "negative_guidance", args.base)]
  if args.sfd:
    subjects.append(("sfd", "sfd", args.sfd))
    sfd = forgetting_metrics_of_student(args.sfd, forget, 10 if args.tiny else 100)
    record["sfd"] = sfd
    rows.append(["SFD student", sfd["forget_share"], sfd["kept_accuracy"]])
  subjects.append(("original", "run", args.base))
  rows.append(["original (control)", None, None])
  for (name, kind, workdir), row in zip(subjects, rows):
    config = attack_config.get_config(_variant(kind, args.tiny))
    config.subject.workdir = workdir
    if args.attack_steps and not args.tiny:
      config.train.update(num_steps=args.attack_steps, eval_every=args.attack_steps,
                          checkpoint_every=args.attack_steps)
    result = _run(config, _path(args.workdir, f"attack_{name}"))
    record[f"attack_{name}"] = result
    row[1:] = [f"{result['forget_share_before_attack']:.3f}" if row[1] is None
               else f"{row[1]:.3f}", "-" if row[2] is None else f"{row[2]:.3f}",
               f"{result['forget_share_before_attack']:.3f}",
               f"{result['forget_share_after_attack']:.3f}", config.train.num_steps]
  print(tables.write_table(
      args.workdir, "unlearning_study",
      ["model", f"share of class-{forget} samples read as {forget}", "accuracy, other classes",
       "attack: share before", "attack: share after", "attack steps"], rows, record,
      "One seed. Unlearning columns: 100 samples per class (erased: its evaluation's "
      "samples); attack columns: samples of the forgotten class with its own embedding "
      "(before) and with the adversarial one (after)."))


def forgetting_metrics_of_student(workdir, forget, per_class):
  """forgetting_metrics of an SFD student's one-step samples."""
  from diffjax.distillation import load_student   # pylint: disable=g-import-not-at-top
  student, params, _ = load_student(workdir)
  labels = np.repeat(np.arange(10), per_class).astype(np.int32)
  images = np.asarray(jax.jit(lambda key: student.generate(params, key, len(labels),
                                                           labels).x)(jax.random.PRNGKey(0)))
  reference, reference_labels = digits_reference_images("test")
  return forgetting_metrics(np.clip(images, -1, 1), labels, forget, reference,
                            reference_labels, digits_classifier())


STUDIES = {"trojdiff": trojdiff_study, "unlearning": unlearning_study}


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
  parser.add_argument("--attack_steps", type=int, default=0)
  STUDIES[(args := parser.parse_args(argv)).study](args)


if __name__ == "__main__":
  main()
