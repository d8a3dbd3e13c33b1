"""The workdir's lock: one run (train, eval or sample) at a time, naming its holder.

`<workdir>/lock` holds {"pid", "host", "mode", "started"} of the run that holds it; a
second command on the workdir is refused at once, naming them. Only process 0 of a
multi-host run locks. `lock_workdir(workdir, mode)` picks the lock for the workdir:

- A local directory: `FileLock`, an OS file lock (flock) on the file. The kernel drops it
  when its process ends, even by SIGKILL, so a lock file left by a killed run is simply
  taken over (and reported).
- gs://: `ObjectLock`, a lease. The lock object is created only if absent (a generation
  precondition, `ifGenerationMatch=0`, so of two runs starting together exactly one
  wins), renewed by a heartbeat thread every quarter of its lease (each renewal
  conditional on the generation the holder last wrote), and deleted at the end
  (conditional again, so a run never deletes a lock it no longer holds). A killed run
  leaves its object behind; the next run takes it over, conditional on the generation
  it read, as soon as it can tell the holder is gone: at once when the holder ran on the
  same host and its pid has ended, otherwise when the holder's lease has run out (60 s
  after its last renewal by the taker's clock; hosts' clocks are assumed to agree to
  well within that). A run that finds its lock taken over (it could not renew it for a
  whole lease) stops without saving (`check_held`).
- Other object stores (s3://, az://): no lock (a warning says so).
"""
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid

import jax
from absl import logging

from diffjax.train import storage

LOCK_FILE = "lock"
LEASE_SECONDS = 60.0


class WorkdirLockedError(RuntimeError):
  """Another process is using the workdir."""


def _holder_text(holder: dict) -> str:
  return (f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} "
          f"(--mode={holder.get('mode', '?')}, since {holder.get('started', '?')})")


def _refusal(workdir, holder: dict, note: str = "") -> WorkdirLockedError:
  return WorkdirLockedError(f"The workdir {workdir} is in use by {_holder_text(holder)}"
                            f"{note}; wait for it to end or stop it, then rerun.")


def _parse(data: bytes) -> dict:
  try:
    record = json.loads(data.decode() or "{}")
  except (ValueError, UnicodeDecodeError):
    return {}
  return record if isinstance(record, dict) else {}


def _pid_namespace():
  try:
    return os.stat("/proc/self/ns/pid").st_ino
  except OSError:
    return None


def _process_ended(pid) -> bool:
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return True
  except (PermissionError, ValueError, TypeError, OverflowError):
    return False
  return False


class FileLock:
  """The lock of a local workdir: flock(2) on `<workdir>/lock` (see the module
  docstring). On filesystems without file locks the run goes ahead with a warning."""

  def __init__(self, workdir: str, mode: str):
    self.path = os.path.join(os.fspath(storage.workdir_path(workdir)), LOCK_FILE)
    self.workdir = workdir
    self.mode = mode
    self._fd = None

  def acquire(self):
    if jax.process_index() != 0:
      return self
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, storage._file_mode())  # pylint: disable=protected-access
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise _refusal(self.workdir, holder) from None
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

  def check_held(self):
    """A flock cannot be taken from a living process: nothing to check."""

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
  return _parse(os.pread(fd, 4096, 0))


class ObjectLock:
  """The lock of a gs:// workdir: a lease renewed by a heartbeat (see the module
  docstring).

  Args:
    workdir: the workdir URL.
    mode: the run's --mode, recorded for the message that refuses another run.
    lease_seconds: how long after its last renewal a holder's lock may be taken over.
  """

  def __init__(self, workdir: str, mode: str, lease_seconds: float = None):
    self.path = storage.workdir_path(workdir) / LOCK_FILE
    self.workdir = workdir
    self.mode = mode
    self.lease_seconds = float(lease_seconds or LEASE_SECONDS)
    self.lost = None   # The record of whoever took the lock over, if that happened.
    self._generation = None
    self._token = uuid.uuid4().hex
    self._started = time.strftime("%Y-%m-%d %H:%M:%S")
    self._stop = threading.Event()
    self._heartbeat = None

  def _record(self) -> bytes:
    return (json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                        "mode": self.mode, "started": self._started,
                        "renewed": time.time(), "lease_seconds": self.lease_seconds,
                        "pid_namespace": _pid_namespace(), "token": self._token})
            + "\n").encode()

  def _gone(self, holder: dict):
    """Why the holder of `holder` no longer holds the lock, or None if it may."""
    same_host = (holder.get("host") == socket.gethostname()
                 and holder.get("pid_namespace") == _pid_namespace())
    if same_host and _process_ended(holder.get("pid")):
      return "which ended without releasing it"
    try:
      age = time.time() - float(holder["renewed"])
      lease = float(holder.get("lease_seconds", LEASE_SECONDS))
    except (KeyError, TypeError, ValueError):
      return "whose lock record is unreadable"
    if age > lease:
      return f"whose lease ran out {age - lease:.0f} s ago"
    return None

  def acquire(self):
    if jax.process_index() != 0:
      return self
    for _ in range(20):
      try:
        self._generation = storage.write_object(self.path, self._record(), if_generation=0)
        break
      except storage.GenerationMismatch:
        pass
      data, generation = storage.read_object(self.path)
      if data is None:
        continue  # Released meanwhile: try to create it again.
      holder = _parse(data)
      why = self._gone(holder)
      if why is None:
        age = time.time() - float(holder.get("renewed", time.time()))
        raise _refusal(self.workdir, holder,
                       f", its lease renewed {age:.0f} s ago") from None
      try:
        self._generation = storage.write_object(self.path, self._record(),
                                                if_generation=generation)
      except storage.GenerationMismatch:
        continue  # Renewed, released or taken by another run meanwhile: look again.
      logging.info("Took over the lock of process %s on host %s (--mode=%s), %s.",
                   holder.get("pid", "?"), holder.get("host", "?"), holder.get("mode", "?"),
                   why)
      break
    else:
      raise WorkdirLockedError(f"The lock of the workdir {self.workdir} kept changing "
                               "hands; is another run starting on it? Rerun.")
    self._heartbeat = threading.Thread(target=self._beat, name="diffjax-lock-heartbeat",
                                       daemon=True)
    self._heartbeat.start()
    return self

  def _beat(self):
    while not self._stop.wait(self.lease_seconds / 4):
      try:
        if not self._renew():
          return
      except Exception as error:  # pylint: disable=broad-except  (a network failure)
        logging.warning("Could not renew the lock of %s (%s: %s); retrying.", self.workdir,
                        type(error).__name__, error)

  def _renew(self) -> bool:
    """Renews the lease; False (and `lost` set) if another run took the lock over."""
    try:
      self._generation = storage.write_object(self.path, self._record(),
                                              if_generation=self._generation)
      return True
    except storage.GenerationMismatch:
      pass
    data, generation = storage.read_object(self.path)
    holder = _parse(data) if data is not None else {}
    if holder.get("token") == self._token:  # Our own renewal, its reply lost.
      self._generation = generation
      return True
    self.lost = holder or {"pid": "?", "host": "?", "mode": "?", "started": "?"}
    logging.error("The lock of %s was taken over by %s: this run stops without saving.",
                  self.workdir, _holder_text(self.lost))
    return False

  def check_held(self):
    """Raises WorkdirLockedError if another run took the lock over."""
    if self.lost is not None:
      raise WorkdirLockedError(
          f"The workdir {self.workdir} was taken over by {_holder_text(self.lost)}: this "
          f"run could not renew its lock within its lease ({self.lease_seconds:.0f} s) and "
          "stopped without saving.")

  def release(self):
    if self._heartbeat is None:
      return
    self._stop.set()
    self._heartbeat.join()
    self._heartbeat = None
    if self.lost is not None:
      return
    try:  # (The generation is checked first too: some emulators ignore a delete's.)
      if storage.read_object(self.path)[1] == self._generation:
        storage.delete_object(self.path, if_generation=self._generation)
    except storage.GenerationMismatch:
      pass  # Taken over meanwhile: it is no longer ours to delete.
    except Exception as error:  # pylint: disable=broad-except  (a network failure)
      logging.warning("Could not delete the lock of %s (%s: %s); the next run takes it "
                      "over when its lease has run out.", self.workdir,
                      type(error).__name__, error)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


class NoLock:
  """Object stores without generation preconditions in diffjax (s3://, az://)."""

  def __init__(self, workdir: str, mode: str):
    self.workdir = workdir
    self.mode = mode

  def acquire(self):
    if jax.process_index() == 0:
      logging.warning("No lock on %s (diffjax locks local and gs:// workdirs only): make "
                      "sure no other run uses this workdir.", self.workdir)
    return self

  def check_held(self):
    pass

  def release(self):
    pass

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def lock_workdir(workdir: str, mode: str):
  """The lock for `workdir` (use it as a context manager)."""
  if not storage.is_remote(workdir):
    return FileLock(workdir, mode)
  if storage.is_versioned(workdir):
    return ObjectLock(workdir, mode)
  return NoLock(workdir, mode)
