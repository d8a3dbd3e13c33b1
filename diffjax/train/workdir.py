"""A self-describing workdir: config.json, checkpoints/, metrics.jsonl, events/, plots/.

A rerun of the same command in a workdir resumes it. A config that differs from the one
recorded there is refused unless the difference is only in keys that cannot change the
trained model (step counts, logging, evaluation and sampling settings).

One process at a time: a run holds `<workdir>/lock` (an OS file lock, released by the
kernel when the process ends however it ends, so a killed run leaves no stale lock); a
second command on the workdir is refused at once, naming the holder's pid and host.

Files are replaced atomically (a temporary file, then a rename): a kill or a full disk
leaves the old or the new content, never half a file. `metrics.jsonl` is rewritten whole
for each record (it holds one line per evaluation), and a torn last line left by an older
version or a copy is dropped with a warning and repaired on resume.
"""
import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time

import jax
import ml_collections
from absl import logging

from diffjax.errors import ConfigError
from diffjax.train.parallel import barrier

# Keys (dotted prefixes) that may change between a run and its resumption.
RESUMABLE_PREFIXES = ("train.num_steps", "train.log_every", "train.eval_every",
                      "train.checkpoint_every", "train.steps_per_call",
                      "train.keep_checkpoints", "train.model_axis_size", "eval.",
                      "sample.")
RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl", "events", "plots",
             "broken_checkpoints", "samples.npz", "samples")
LOCK_FILE = "lock"
_TMP_PREFIX, _TMP_SUFFIX = ".diffjax-", ".tmp"


class WorkdirError(ConfigError):
  """--workdir cannot be used: a file, not writable, or (eval, sample) holds no run."""


class IncompatibleWorkdirError(ConfigError):
  """The workdir holds a run with a different, incompatible config."""


class WorkdirLockedError(RuntimeError):
  """Another process is using the workdir."""


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


def _file_mode() -> int:
  umask = os.umask(0)
  os.umask(umask)
  return 0o666 & ~umask


def atomic_write_text(path: str, text: str):
  """Writes via a temporary file, fsync and a rename, so readers (and a rerun after a
  kill) never see half a file; the file gets the usual permissions (0644 under umask 022)."""
  atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str, data: bytes):
  """`atomic_write_text` for bytes."""
  directory = os.path.dirname(os.path.abspath(path))
  with tempfile.NamedTemporaryFile("wb", dir=directory, delete=False, prefix=_TMP_PREFIX,
                                   suffix=_TMP_SUFFIX) as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
    tmp = f.name
  os.chmod(tmp, _file_mode())
  os.replace(tmp, path)


def remove_stray_temporaries(directory: str):
  """Deletes temporary files left by a write that a kill interrupted."""
  if not os.path.isdir(directory):
    return
  for name in os.listdir(directory):
    if name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX):
      os.remove(os.path.join(directory, name))


def check_workdir_path(workdir: str):
  """Raises WorkdirError, before anything is written, if `workdir` could not hold a run:
  it is a file, lies under a file, or is (or would be created in) a directory that is not
  writable."""
  if not isinstance(workdir, str) or not workdir.strip():
    raise WorkdirError(f"--workdir={workdir!r} must be a directory path.")
  path = os.path.abspath(workdir)
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
    os.makedirs(workdir, exist_ok=True)
  except OSError as error:
    raise WorkdirError(f"--workdir={workdir} cannot be created: "
                       f"{error.strerror or error}.") from None


def check_has_run(workdir: str, mode: str):
  """For --mode=eval / sample: WorkdirError unless `workdir` holds a checkpoint. Touches
  nothing."""
  checkpoints = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(workdir):
    raise WorkdirError(f"--mode={mode}: --workdir={workdir} does not exist; train first "
                       "(--mode=train).")
  steps = [d for d in os.listdir(checkpoints) if d.isdigit()] if os.path.isdir(
      checkpoints) else []
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


def check_workdir(workdir: str, config):
  """Raises IncompatibleWorkdirError if `workdir` records an incompatible config."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except ValueError as error:
    raise IncompatibleWorkdirError(
        f"{path} is not valid JSON ({error}); restore it, choose another --workdir, or "
        "pass --overwrite to discard that run.") from None
  diffs = config_differences(old, config_to_dict(config))
  if diffs:
    listed = "; ".join(f"{k}: {o!r} (recorded) vs {n!r} (given)" for k, o, n in diffs)
    raise IncompatibleWorkdirError(
        f"The workdir {workdir} holds a run with a different config: {listed}. Resume it "
        "with its own config, choose another --workdir, or pass --overwrite to discard "
        "that run.")


class WorkdirLock:
  """An exclusive lock on a workdir for one run (train, eval or sample).

  `<workdir>/lock` is locked with flock(2) and holds {"pid", "host", "mode", "started"}.
  The kernel drops the lock when its process ends, even by SIGKILL, so a lock file left by
  a killed process is simply taken over (and reported). On filesystems without file locks
  the run goes ahead with a warning. Only process 0 locks a multi-host run's workdir.
  """

  def __init__(self, workdir: str, mode: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self.workdir = workdir
    self.mode = mode
    self._fd = None

  def acquire(self):
    if jax.process_index() != 0:
      return self
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, _file_mode())
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise WorkdirLockedError(
            f"The workdir {self.workdir} is in use by process {holder.get('pid', '?')} on "
            f"host {holder.get('host', '?')} (--mode={holder.get('mode', '?')}, since "
            f"{holder.get('started', '?')}); wait for it to end or stop it, then rerun."
        ) from None
      except OSError as error:
        os.close(fd)
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
          logging.warning("The filesystem of %s does not support file locks: make sure no "
                          "other process uses this workdir.", self.workdir)
          return self
        raise
      try:  # The holder we waited for may have deleted the file: lock the current one.
        same = os.path.samestat(os.fstat(fd), os.stat(self.path))
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    stale = _read_holder(fd)
    if stale:
      logging.info("Took over the lock of process %s on host %s (--mode=%s), which ended "
                   "without releasing it.", stale.get("pid", "?"), stale.get("host", "?"),
                   stale.get("mode", "?"))
    record = {"pid": os.getpid(), "host": socket.gethostname(), "mode": self.mode,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    os.fsync(fd)
    self._fd = fd
    return self

  def release(self):
    if self._fd is not None:
      try:
        os.remove(self.path)  # Before unlocking: a waiter then finds a new file.
      except FileNotFoundError:
        pass
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def _read_holder(fd) -> dict:
  try:
    return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
  except ValueError:
    return {}


def prepare_workdir(workdir: str, config, overwrite: bool = False):
  """Validates `workdir` for `config` (IncompatibleWorkdirError unless `overwrite`),
  discards the old run if `overwrite`, and records the resolved config. Call it while
  holding the workdir's lock."""
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
    remove_stray_temporaries(workdir)
    atomic_write_text(os.path.join(workdir, "config.json"),
                      json.dumps(config_to_dict(config), indent=2, sort_keys=True) + "\n")
  barrier("diffjax_prepare_workdir")


def _parse_metrics(path: str):
  """(records, repaired): a torn last line is dropped; a damaged earlier line raises."""
  with open(path) as f:
    text = f.read()
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


def read_metrics(workdir: str):
  """Returns the list of evaluation records in metrics.jsonl (empty if none)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return _parse_metrics(path)[0]


def _write_metrics(workdir: str, records):
  atomic_write_text(os.path.join(workdir, "metrics.jsonl"),
                    "".join(json.dumps(r) + "\n" for r in records))


def add_metrics_record(workdir: str, record: dict):
  """Adds `record` to metrics.jsonl in step order (after records of the same step), by an
  atomic rewrite of the file."""
  records = read_metrics(workdir)
  position = len(records)
  while position and records[position - 1].get("step", 0) > record["step"]:
    position -= 1
  records.insert(position, record)
  _write_metrics(workdir, records)


def truncate_metrics(workdir: str, last_step: int):
  """Drops records after `last_step` (a resumed run rewrites them, without duplicates)
  and repairs a torn last line."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path) or jax.process_index() != 0:
    return
  records, repaired = _parse_metrics(path)
  kept = [r for r in records if r.get("step", 0) <= last_step]
  if repaired or len(kept) != len(records):
    _write_metrics(workdir, kept)
