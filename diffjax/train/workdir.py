"""A self-describing workdir: config.json, checkpoints/, metrics.jsonl, events/, plots/.

A rerun of the same command in a workdir resumes it. A config that differs from the one
recorded there is refused unless the difference is only in keys that cannot change the
trained model (step counts, logging, evaluation and sampling settings).
"""
import json
import os
import shutil
import tempfile

import jax
import ml_collections

from diffjax.train.parallel import barrier

# Keys (dotted prefixes) that may change between a run and its resumption.
RESUMABLE_PREFIXES = ("train.num_steps", "train.log_every", "train.eval_every",
                      "train.checkpoint_every", "train.steps_per_call",
                      "train.keep_checkpoints", "train.model_axis_size", "eval.",
                      "sample.")
RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl", "events", "plots",
             "broken_checkpoints", "samples.npz")


class IncompatibleWorkdirError(ValueError):
  """The workdir holds a run with a different, incompatible config."""


def _flatten(tree, prefix=""):
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def atomic_write_text(path: str, text: str):
  """Writes via a temporary file and a rename, so readers never see half a file."""
  directory = os.path.dirname(os.path.abspath(path))
  with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
    f.write(text)
    tmp = f.name
  os.replace(tmp, path)


def config_differences(old: dict, new: dict):
  """Returns [(key, old, new)] for keys that differ and are not resumable."""
  old_flat, new_flat = _flatten(old), _flatten(new)
  diffs = []
  for key in sorted(set(old_flat) | set(new_flat)):
    if key.startswith(RESUMABLE_PREFIXES) or old_flat.get(key) == new_flat.get(key):
      continue
    diffs.append((key, old_flat.get(key, "<absent>"), new_flat.get(key, "<absent>")))
  return diffs


def check_workdir(workdir: str, config):
  """Raises IncompatibleWorkdirError if `workdir` records an incompatible config."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  diffs = config_differences(old, config_to_dict(config))
  if diffs:
    lines = "\n".join(f"  {k}: {o!r} (recorded) vs {n!r} (given)" for k, o, n in diffs)
    raise IncompatibleWorkdirError(
        f"The workdir {workdir} holds a run with a different config:\n{lines}\n"
        "Resume it with its own config, choose another --workdir, or pass --overwrite "
        "to discard that run.")


def prepare_workdir(workdir: str, config, overwrite: bool = False):
  """Creates or validates `workdir` for `config`; records the resolved config.

  Raises:
    IncompatibleWorkdirError: the workdir holds a run with an incompatible config and
      `overwrite` is False.
  """
  os.makedirs(workdir, exist_ok=True)
  if not overwrite:
    check_workdir(workdir, config)
  if jax.process_index() == 0:
    if overwrite:
      for name in RUN_FILES:
        target = os.path.join(workdir, name)
        if os.path.isdir(target):
          shutil.rmtree(target)
        elif os.path.exists(target):
          os.remove(target)
    atomic_write_text(os.path.join(workdir, "config.json"),
                      json.dumps(config_to_dict(config), indent=2, sort_keys=True) + "\n")
  barrier("diffjax_prepare_workdir")


def read_metrics(workdir: str):
  """Returns the list of evaluation records in metrics.jsonl (empty if none)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(workdir: str, last_step: int):
  """Drops records after `last_step`: a resumed run rewrites them, without duplicates."""
  records = read_metrics(workdir)
  kept = [r for r in records if r.get("step", 0) <= last_step]
  if len(kept) != len(records) and jax.process_index() == 0:
    atomic_write_text(os.path.join(workdir, "metrics.jsonl"),
                      "".join(json.dumps(r) + "\n" for r in kept))
