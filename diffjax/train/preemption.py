"""SIGTERM (preemption): stop cleanly at any moment of a run.

Before training starts (imports, building the task, compiling, restoring), a SIGTERM
raises `StopRequested` at once: nothing has been trained that a checkpoint could save, and
the command exits 0 saying so. Once the training loop runs, the signal only sets a flag
that the loop reads after each compiled call: it saves a checkpoint at that step and stops
(`deferred()`). `StopRequested` derives from BaseException so that handlers of ordinary
errors (e.g. the restore loop's, which moves broken checkpoints aside) never catch it.
"""
import contextlib
import signal
import threading

from absl import logging


class StopRequested(BaseException):
  """A SIGTERM arrived before training started."""


_state = {"deferred": False, "requested": False}


def _handler(signum, frame):
  del frame
  _state["requested"] = True
  if not _state["deferred"]:
    raise StopRequested(f"Stopped on request (signal {signum}) before training started; "
                        "rerun the same command to start.")
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
  """Within the block a SIGTERM sets `requested()` instead of raising. Installs the
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
