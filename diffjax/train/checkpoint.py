"""Orbax checkpoints: resume from the newest checkpoint that restores, never half-written.

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a
crash or SIGKILL at any point leaves either a whole checkpoint or none. A checkpoint that
still fails to restore (disk corruption, a truncated copy) is reported, moved aside to
`<workdir>/broken_checkpoints/` by training, and the previous one is used; evaluation and
sampling (`read_only`) skip it and never change a run's checkpoints.

On gs:// orbax writes arrays through tensorstore, and marks a checkpoint complete with a
`commit_success.txt` object written last instead of a rename (which GCS does not have);
an uncommitted one is not a checkpoint. Moving a broken checkpoint aside is a copy and a
delete there, its `commit_success.txt` deleted first: a kill in between leaves a copy and
an uncommitted leftover, never a broken checkpoint that still counts.
"""
import contextlib
import gc
import sys

import jax
from absl import logging

from diffjax.train import storage
from diffjax.train.parallel import barrier


# The object orbax writes last into a checkpoint on gs:// (where it cannot rename).
COMMIT_MARKER = "commit_success.txt"


class CheckpointError(RuntimeError):
  """No checkpoint of a run could be restored."""


def failure_reason(error: BaseException, limit: int = 300) -> str:
  """One line for a failed restore: the innermost cause of `error` (orbax wraps the
  storage error that says what is wrong), cut at a word boundary."""
  while error.__cause__ is not None or error.__context__ is not None:
    error = error.__cause__ or error.__context__
  text = " ".join(str(error).split()) or type(error).__name__
  if len(text) > limit:
    text = text[:limit].rsplit(" ", 1)[0] + " ..."
  return f"{type(error).__name__}: {text}"


@contextlib.contextmanager
def _quiet_abandoned_reads():
  """A failed restore leaves orbax's other read coroutines unfinished; when they are
  collected Python prints their errors as "Exception ignored in ..." tracebacks (and
  "Event loop is closed"), which only repeat the failure already reported. They are
  logged at --verbosity=1 instead."""
  previous = sys.unraisablehook
  def hook(unraisable):
    logging.vlog(1, "After a failed restore: %s: %s", type(unraisable.exc_value).__name__,
                 unraisable.exc_value)
  sys.unraisablehook = hook
  try:
    yield
  finally:
    gc.collect()
    sys.unraisablehook = previous


class Checkpointer:
  """Saves and restores a `TrainState` under `<workdir>/checkpoints`.

  With `read_only` (evaluation, sampling) nothing is created, saved or moved.
  """

  def __init__(self, workdir: str, max_to_keep: int = 3, read_only: bool = False):
    self.workdir = storage.workdir_path(workdir)
    self.directory = self.workdir / "checkpoints"
    self._max_to_keep = max_to_keep
    self._read_only = read_only
    self._manager = self._open()

  def _open(self):
    # Imported here, not at the top: orbax takes about 0.5 s to import.
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    options = ocp.CheckpointManagerOptions(
        max_to_keep=self._max_to_keep, create=not self._read_only,
        cleanup_tmp_directories=not self._read_only)
    return ocp.CheckpointManager(self.directory, options=options)

  def steps(self):
    return sorted(self._manager.all_steps())

  def latest_step(self):
    return self._manager.latest_step()

  def save(self, state, wait=False):
    """Saves `state` at its own step (asynchronously unless `wait`)."""
    if self._read_only:
      raise RuntimeError("This Checkpointer is read-only.")
    # Imported here, not at the top: orbax takes about 0.5 s to import.
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    if wait:
      self._manager.wait_until_finished()

  def restore_latest(self, abstract_state):
    """Restores the newest checkpoint that loads into `abstract_state`'s structure.

    Args:
      abstract_state: a pytree of `jax.ShapeDtypeStruct` (with shardings) like the state.

    Returns:
      The restored state, or None if the run has no checkpoint yet.

    Raises:
      CheckpointError: checkpoints exist but none restores.
    """
    # Imported here, not at the top: orbax takes about 0.5 s to import.
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    failures = []
    for step in reversed(self.steps()):
      with _quiet_abandoned_reads():
        try:
          return self._manager.restore(step,
                                       args=ocp.args.StandardRestore(abstract_state))
        except Exception as error:  # Orbax raises many types for a damaged checkpoint.
          message = failure_reason(error)
        logging.warning("Checkpoint at step %d in %s failed to restore (%s); %s the "
                        "previous one.", step, self.directory, message,
                        "trying" if self._read_only else
                        "moving it to broken_checkpoints/ and trying")
        failures.append((step, message))
        if not self._read_only:
          self._quarantine(step)
    if failures:
      raise CheckpointError(
          f"No checkpoint in {self.directory} could be restored: "
          + "; ".join(f"step {s}: {m}" for s, m in failures) + ". "
          + ("Train again (--mode=train) or use another --workdir." if self._read_only else
             "They were moved to broken_checkpoints/. Rerun to start from scratch, or use "
             "another --workdir."))
    return None

  def restore_as_saved(self, step=None):
    """(step, tree) of the checkpoint at `step` (default: the newest that restores) as it
    was saved, with no target structure: dicts of host NumPy arrays (a `TrainState` comes
    back as a dict of its fields). For loaders that know the config but not the task
    (`diffjax.runs`). Raises CheckpointError when none (or not `step`) restores."""
    # Imported here, not at the top: orbax takes about 0.5 s to import.
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    steps = self.steps()
    if step is not None:
      if step not in steps:
        raise CheckpointError(f"No checkpoint at step {step} in {self.directory}; "
                              f"steps saved: {steps or 'none'}.")
      steps = [step]
    failures = []
    for candidate in reversed(steps):
      with _quiet_abandoned_reads():
        try:
          return candidate, self._manager.restore(candidate,
                                                  args=ocp.args.StandardRestore())
        except Exception as error:  # Orbax raises many types for a damaged checkpoint.
          failures.append(f"step {candidate}: {failure_reason(error)}")
    raise CheckpointError(f"No checkpoint in {self.directory} could be restored"
                          + (f": {'; '.join(failures)}." if failures else "."))

  def _quarantine(self, step):
    self._manager.wait_until_finished()
    source = self.directory / str(step)
    if jax.process_index() == 0 and source.is_dir():
      target_dir = self.workdir / "broken_checkpoints"
      storage.makedirs(target_dir)
      target = target_dir / str(step)
      storage.remove(target)
      storage.move_tree(source, target, marker=COMMIT_MARKER)
    barrier("diffjax_quarantine_checkpoint")
    with _quiet_abandoned_reads():
      self._manager.close()
      self._manager = self._open()

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()
