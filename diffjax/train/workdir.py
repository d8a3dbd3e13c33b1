"""A self-describing workdir: config.json, checkpoints/, metrics.jsonl, events/, plots/.

A workdir is a local directory or an object-store URL (gs://bucket/run); every file is
read and written through `diffjax.train.storage`, which says how each operation is made
safe on an object store.

A rerun of the same command in a workdir resumes it. A config that differs from the one
recorded there is refused unless the difference is only in keys that cannot change the
trained model (step counts, logging, evaluation and sampling settings).

One process at a time: a run holds `<workdir>/lock` (`diffjax.train.locks`: an OS file
lock locally, a lease on gs://); a second command on the workdir is refused at once,
naming the holder's pid and host, and a killed run's lock is taken over.

Files are replaced atomically (locally a temporary file, then a rename; on an object store
one upload): a kill or a full disk leaves the old or the new content, never half a file.
`metrics.jsonl` is rewritten whole for each record (it holds one line per evaluation; on
gs:// conditional on the generation read, see `storage.update_file`), and a torn last line
left by an older version or a copy is dropped with a warning and repaired on resume. Its
records are strict JSON: a non-finite metric is written as null (`finite_or_null`).
"""
import json
import math
import os

import jax
import ml_collections
from absl import logging

from diffjax.errors import ConfigError
from diffjax.train import storage
from diffjax.train.locks import (LOCK_FILE, FileLock, WorkdirLockedError,  # pylint: disable=unused-import
                                 lock_workdir)
from diffjax.train.parallel import barrier
from diffjax.train.storage import WorkdirError  # pylint: disable=unused-import

# Keys (dotted prefixes) that may change between a run and its resumption.
RESUMABLE_PREFIXES = ("train.num_steps", "train.log_every", "train.eval_every",
                      "train.checkpoint_every", "train.steps_per_call",
                      "train.keep_checkpoints", "train.model_axis_size", "eval.",
                      "sample.")
RUN_FILES = ("config.json", "run.json", "checkpoints", "metrics.jsonl", "events", "plots",
             "broken_checkpoints", "samples.npz", "samples")
RUN_RECORD = "run.json"
WorkdirLock = FileLock  # The lock of a local workdir (`lock_workdir` picks for any).


class IncompatibleWorkdirError(ConfigError):
  """The workdir holds a run with a different, incompatible config."""


class MetricsFileError(RuntimeError):
  """metrics.jsonl is damaged before its last line."""


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


def atomic_write_text(path, text: str):
  """Replaces the file at `path` atomically (`storage.write_bytes`)."""
  storage.write_text(path, text)


def atomic_write_bytes(path, data: bytes):
  """`atomic_write_text` for bytes."""
  storage.write_bytes(path, data)


def remove_stray_temporaries(directory):
  """Deletes temporary files left by a write that a kill interrupted."""
  storage.remove_stray_temporaries(directory)


def check_workdir_path(workdir: str):
  """Raises WorkdirError, before anything is written, if `workdir` could not hold a run:
  it is a file, lies under a file, or is (or would be created in) a directory that is not
  writable; for a URL, see `storage.check_remote_workdir` (scheme, client, credentials,
  bucket)."""
  if not isinstance(workdir, str) or not workdir.strip():
    raise WorkdirError(f"--workdir={workdir!r} must be a directory path.")
  if storage.is_remote(workdir):
    storage.check_remote_workdir(workdir)
    return
  path = os.path.abspath(workdir)  # A local path: checked with the OS's own view.
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(f"--workdir={workdir} is a file, not a directory; choose another "
                       "--workdir.")
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise WorkdirError(f"--workdir={workdir} cannot be created: {existing} is a file.")
  if not _writable(existing):
    what = "is not writable" if existing == path else f"cannot be created: {existing} is " \
                                                      "not writable"
    raise WorkdirError(f"--workdir={workdir} {what}; choose another --workdir.")


def _writable(directory: str) -> bool:
  return os.access(directory, os.W_OK | os.X_OK)


def create_workdir(workdir: str):
  try:
    storage.makedirs(storage.workdir_path(workdir))
  except OSError as error:
    raise WorkdirError(f"--workdir={workdir} cannot be created: "
                       f"{error.strerror or error}.") from None


def check_has_run(workdir: str, mode: str):
  """For --mode=eval / sample: WorkdirError unless `workdir` holds a checkpoint. Touches
  nothing."""
  if storage.is_remote(workdir):
    storage.check_remote_workdir(workdir)
  path = storage.workdir_path(workdir)
  checkpoints = path / "checkpoints"
  if not path.is_dir():
    raise WorkdirError(f"--mode={mode}: --workdir={workdir} does not exist; train first "
                       "(--mode=train).")
  steps = [d.name for d in checkpoints.iterdir() if d.name.isdigit()] if (
      checkpoints.is_dir()) else []
  if not steps:
    raise WorkdirError(f"--mode={mode}: no checkpoint in {workdir}; train first "
                       "(--mode=train with the same --config and --workdir).")


def config_differences(old: dict, new: dict):
  """Returns [(key, old, new)] for keys that differ and are not resumable."""
  old_flat, new_flat = _flatten(old), _flatten(new)
  diffs = []
  for key in sorted(set(old_flat) | set(new_flat)):
    if key.startswith(RESUMABLE_PREFIXES) or old_flat.get(key) == new_flat.get(key):
      continue
    diffs.append((key, old_flat.get(key, "<absent>"), new_flat.get(key, "<absent>")))
  return diffs


def run_data(workdir: str):
  """The names of what `workdir` keeps of an earlier run that a rerun would keep too: its
  checkpoints (moved-aside broken ones included) and samples. A run without a checkpoint
  has none: its metrics.jsonl records and TensorBoard points lie after step 0, and a rerun,
  which starts from scratch, drops them."""
  path = storage.workdir_path(workdir)
  checkpoints = path / "checkpoints"
  found = []
  if checkpoints.is_dir() and any(d.name.isdigit() for d in checkpoints.iterdir()):
    found.append("checkpoints")
  found += [name for name in ("broken_checkpoints", "samples", "samples.npz")
            if (path / name).exists()]
  return found


def check_workdir(workdir: str, config) -> str:
  """Raises IncompatibleWorkdirError if `workdir` records an incompatible config of a run
  that has data (`run_data`). A run that stopped before its first checkpoint has none: a
  different config then replaces it (a rerun starts from scratch), and the differences are
  returned as one line for the log ("" otherwise)."""
  path = storage.workdir_path(workdir) / "config.json"
  if not path.exists():
    return ""
  try:
    old = json.loads(storage.read_text(path))
  except ValueError as error:
    raise IncompatibleWorkdirError(
        f"{path} is not valid JSON ({error}); restore it, choose another --workdir, or "
        "pass --overwrite to discard that run.") from None
  diffs = config_differences(old, config_to_dict(config))
  if diffs and not run_data(workdir):
    return "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in diffs)
  if diffs:
    listed = "; ".join(f"{k}: {o!r} (recorded) vs {n!r} (given)" for k, o, n in diffs)
    raise IncompatibleWorkdirError(
        f"The workdir {workdir} holds a run with a different config: {listed}. Resume it "
        "with its own config, choose another --workdir, or pass --overwrite to discard "
        "that run.")
  return ""


def prepare_workdir(workdir: str, config, overwrite: bool = False, record=None):
  """Validates `workdir` for `config` (IncompatibleWorkdirError unless `overwrite`),
  discards the old run if `overwrite`, and records the resolved config (config.json) and
  `record` (run.json: what a loader needs besides the config, `diffjax.runs`). Call it
  while holding the workdir's lock."""
  if not overwrite:
    check_workdir(workdir, config)
  path = storage.workdir_path(workdir)
  if jax.process_index() == 0:
    if overwrite:
      for name in RUN_FILES:
        storage.remove(path / name)
    remove_stray_temporaries(path)
    atomic_write_text(path / "config.json",
                      json.dumps(config_to_dict(config), indent=2, sort_keys=True) + "\n")
    if record is not None:
      atomic_write_text(path / RUN_RECORD,
                        json.dumps(record, indent=2, sort_keys=True) + "\n")
  barrier("diffjax_prepare_workdir")


def read_run_files(workdir: str):
  """(config dict, run record dict or None) recorded in `workdir`; WorkdirError when
  config.json is missing or unreadable."""
  path = storage.workdir_path(workdir)
  try:
    config = json.loads(storage.read_text(path / "config.json"))
  except (OSError, ValueError) as error:
    raise WorkdirError(f"{workdir} holds no run: {path / 'config.json'} is missing or "
                       f"unreadable ({type(error).__name__}).") from None
  record_path = path / RUN_RECORD
  record = json.loads(storage.read_text(record_path)) if record_path.exists() else None
  return config, record


def _metrics_path(workdir):
  return storage.workdir_path(workdir) / "metrics.jsonl"


def _parse_metrics(path, text: str):
  """(records, repaired): a torn last line is dropped; a damaged earlier line raises."""
  lines = text.split("\n")
  records, repaired = [], False
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except ValueError:
      if any(rest.strip() for rest in lines[number:]):
        raise MetricsFileError(
            f"{path} line {number} is not a JSON record ({line[:60]!r}); delete or repair "
            "that line, then rerun.") from None
      logging.warning("Dropping the incomplete last line of %s (%r), left by an "
                      "interrupted write.", path, line[:60])
      repaired = True
  return records, repaired or (bool(text) and not text.endswith("\n"))


def finite_or_null(value):
  """`value` with every NaN or infinite float (also inside lists and dicts) replaced by
  None: JSON has no NaN or Infinity, so metrics.jsonl records them as null."""
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, dict):
    return {k: finite_or_null(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [finite_or_null(v) for v in value]
  return value


def _metrics_text(records) -> bytes:
  return "".join(json.dumps(finite_or_null(r), allow_nan=False) + "\n"
                 for r in records).encode()


def _write_metrics(workdir: str, records):
  """Replaces metrics.jsonl by `records` (one atomic write)."""
  storage.write_bytes(_metrics_path(workdir), _metrics_text(records))


def _null_as_nan(value):
  if value is None:
    return math.nan
  if isinstance(value, dict):
    return {k: _null_as_nan(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_null_as_nan(v) for v in value]
  return value


def read_metrics(workdir: str, null_as_nan: bool = False):
  """Returns the list of evaluation records in metrics.jsonl (empty if none). A metric
  that was not finite reads as None, or as NaN with `null_as_nan` (for tables and
  plots)."""
  path = _metrics_path(workdir)
  if not path.exists():
    return []
  records = _parse_metrics(path, storage.read_text(path))[0]
  return [_null_as_nan(r) for r in records] if null_as_nan else records


def add_metrics_record(workdir: str, record: dict):
  """Adds `record` to metrics.jsonl in step order (after records of the same step), by an
  atomic rewrite of the file (on gs:// conditional on the generation read)."""
  path = _metrics_path(workdir)

  def insert(old):
    records = _parse_metrics(path, old.decode())[0] if old is not None else []
    position = len(records)
    while position and records[position - 1].get("step", 0) > record["step"]:
      position -= 1
    records.insert(position, record)
    return _metrics_text(records)

  storage.update_file(path, insert)


def truncate_metrics(workdir: str, last_step: int):
  """Drops records after `last_step` (a resumed run rewrites them, without duplicates)
  and repairs a torn last line."""
  path = _metrics_path(workdir)
  if jax.process_index() != 0 or not path.exists():
    return

  def truncate(old):
    if old is None:
      return None
    records, repaired = _parse_metrics(path, old.decode())
    kept = [r for r in records if r.get("step", 0) <= last_step]
    return _metrics_text(kept) if repaired or len(kept) != len(records) else None

  storage.update_file(path, truncate)
