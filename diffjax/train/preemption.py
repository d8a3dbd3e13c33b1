"""SIGTERM (preemption): stop cleanly at any moment of a run.

Before a run has opened its checkpoints (building the task, compiling its shapes, checking
and preparing the workdir), a SIGTERM ends the process at once with exit code 0 and a
message: nothing has been trained, and every file diffjax writes is replaced atomically, so
stopping anywhere there leaves the workdir as a SIGKILL would, which a rerun handles. (An
exception raised from a signal handler can land in a garbage-collector callback, where
Python ignores it, and the run would go on.) Once the run has opened its checkpoints
(`deferred()`), the signal only sets a flag that the training loop reads after each
compiled call: it saves a checkpoint at the step reached and stops.
"""
import contextlib
import os
import signal
import sys
import threading

from absl import logging

_state = {"deferred": False, "requested": False}


def _exit_now(message: str):
  print(message, file=sys.stderr, flush=True)
  os._exit(0)  # pylint: disable=protected-access


def _handler(signum, frame):
  del frame
  _state["requested"] = True
  if not _state["deferred"]:
    _exit_now(f"Stopped on request (signal {signum}) before training started; rerun the "
              "same command to start.")
  logging.warning("Received signal %d: saving a checkpoint and stopping.", signum)


def install():
  """Installs the SIGTERM handler (main thread only; a no-op elsewhere). Returns the
  previous handler, or None if nothing was installed."""
  if threading.current_thread() is not threading.main_thread():
    return None
  _state["requested"] = False
  return signal.signal(signal.SIGTERM, _handler)


def requested() -> bool:
  return _state["requested"]


@contextlib.contextmanager
def deferred():
  """Within the block a SIGTERM sets `requested()` instead of exiting. Installs the
  handler if the caller (e.g. a notebook calling `train`) did not, and puts back the
  previous one afterwards."""
  installed = signal.getsignal(signal.SIGTERM) is _handler or (
      threading.current_thread() is not threading.main_thread())
  previous = None if installed else install()
  _state["deferred"] = True
  try:
    yield
  finally:
    _state["deferred"] = False
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
