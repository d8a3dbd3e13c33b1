"""TensorBoard event files that survive kills: written synchronously, repaired on resume.

Event files are TFRecord files of `Event` protos (each record: length, its masked CRC,
data, its masked CRC). The writer here writes each event synchronously (tensorboardX's
SummaryWriter queues events for a thread, and its flush does not wait for that queue, so a
kill loses whatever was queued). The training loop flushes (with fsync) before each
checkpoint save, so every training scalar up to a checkpoint is on disk before the
checkpoint can exist.

On resume at step S, `repair_events` rewrites the run's events into one file holding each
(tag, step) once: training scalars of steps <= S, and evaluation scalars and images only of
the evaluations that metrics.jsonl records (a record is committed after its TensorBoard
events are flushed, so an evaluation interrupted before its record is dropped and run
again). Points between S and the kill are dropped, and the resumed run writes them again:
nothing is duplicated, and nothing up to the last checkpoint is lost.

An object store has no append: there the events go to segments, each an event file of
its own, uploaded whole at every flush (an object is replaced atomically, so a kill
leaves the segment as of the previous flush) until it reaches `SEGMENT_BYTES`, after
which the next flush starts a new one. TensorBoard reads a directory's event files in
name order, which is the order they were written in. A resume compacts them into one.
"""
import io
import os
import socket
import struct
import time

from absl import logging

from diffjax.train import storage

EVENT_FILE_MARKER = "tfevents"
SEGMENT_BYTES = 4 * 2 ** 20
EVALUATION_TAG_PREFIXES = ("eval/", "plots/")


def _masked_crc(data: bytes) -> int:
  # Imported here, not at the top: tensorboardX imports torch (seconds) when installed.
  from tensorboardX.crc32c import crc32c  # pylint: disable=g-import-not-at-top
  x = crc32c(data) & 0xffffffff
  return (((x >> 15) | (x << 17)) + 0xa282ead8) & 0xffffffff


def read_records(path: str):
  """Yields the data of each intact record of a TFRecord file; stops quietly at a torn or
  corrupt tail (a write the process did not finish)."""
  path = storage.workdir_path(path)
  # On an object store one download, rather than a request for each read below.
  with io.BytesIO(path.read_bytes()) if storage.is_remote(path) else path.open("rb") as f:
    while True:
      header = f.read(12)
      if len(header) < 12:
        return
      length, = struct.unpack("<Q", header[:8])
      if struct.unpack("<I", header[8:])[0] != _masked_crc(header[:8]):
        return
      data = f.read(length)
      footer = f.read(4)
      if len(data) < length or len(footer) < 4:
        return
      if struct.unpack("<I", footer)[0] != _masked_crc(data):
        return
      yield data


def read_events(directory: str):
  """All events of the event files in `directory`, file after file in name order."""
  # Imported here, not at the top: tensorboardX imports torch (seconds) when installed.
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  events = []
  for path in event_files(directory):
    events.extend(event_pb2.Event.FromString(data) for data in read_records(path))
  return events


def event_files(directory):
  """The paths (strings) of the event files in `directory`, in name order."""
  directory = storage.workdir_path(directory)
  if not directory.is_dir():
    return []
  return [os.fspath(directory / name) for name in sorted(p.name for p in directory.iterdir())
          if EVENT_FILE_MARKER in name]


def scalars(directory: str):
  """{tag: [(step, value), ...]} of the scalar events in `directory` (for tests and
  analysis), in file order."""
  found = {}
  for event in read_events(directory):
    for value in event.summary.value:
      if value.HasField("simple_value"):
        found.setdefault(value.tag, []).append((event.step, value.simple_value))
  return found


class EventFile:
  """One new event file in `directory`, written synchronously: locally appended to and
  fsynced at each flush; on an object store a segment uploaded whole at each flush (see
  the module docstring). `path` is the (first) file's path."""

  def __init__(self, directory):
    self._directory = storage.workdir_path(directory)
    self._remote = storage.is_remote(self._directory)
    storage.makedirs(self._directory)
    self.path = self._start_file()

  def _start_file(self):
    # Imported here, not at the top: tensorboardX imports torch (seconds) when installed.
    from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
    name = (f"events.out.{EVENT_FILE_MARKER}.{int(time.time())}.{socket.gethostname()}."
            f"{os.getpid()}.{time.monotonic_ns()}")
    path = self._directory / name
    if self._remote:
      self._segment, self._segment_path, self._dirty = bytearray(), path, True
    else:
      self._file = path.open("wb")
    self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
    return os.fspath(path)

  def write(self, event):
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    record = (header + struct.pack("<I", _masked_crc(header)) + data
              + struct.pack("<I", _masked_crc(data)))
    if self._remote:
      self._segment += record
      self._dirty = True
    else:
      self._file.write(record)

  def flush(self):
    if not self._remote:
      self._file.flush()
      os.fsync(self._file.fileno())
      return
    if self._dirty:
      storage.write_bytes(self._segment_path, bytes(self._segment))
      self._dirty = False
    if len(self._segment) >= SEGMENT_BYTES:
      self._start_file()

  def close(self):
    if self._remote:
      if self._dirty:
        self.flush()
      self._dirty = False
    elif not self._file.closed:
      self.flush()
      self._file.close()


def _tag(event):
  return event.summary.value[0].tag if event.summary.value else None


def repair_events(directory: str, last_step: int, evaluated_steps) -> EventFile:
  """Rewrites the event files of `directory` for a run resumed at `last_step` (see the
  module docstring) and returns the new event file, open for the resumed run's events.

  Args:
    directory: the run's events/ directory.
    last_step: the step of the restored checkpoint (0 for a fresh start).
    evaluated_steps: the steps whose evaluations metrics.jsonl records.
  """
  old_files = event_files(directory)
  evaluated = set(evaluated_steps)
  kept, dropped = {}, 0
  for event in read_events(directory):
    tag = _tag(event)
    if tag is None:
      continue  # File-version headers; the new file writes its own.
    if tag.startswith(EVALUATION_TAG_PREFIXES):
      keep = event.step in evaluated and event.step <= last_step
    else:
      keep = event.step <= last_step
    if keep:
      kept.pop((tag, event.step), None)  # The latest write of a point wins, in order.
      kept[(tag, event.step)] = event
    else:
      dropped += 1
  new = EventFile(directory)
  for event in kept.values():
    new.write(event)
  new.flush()
  for path in old_files:
    storage.workdir_path(path).unlink()
  if dropped:
    logging.info("TensorBoard: dropped %d point(s) after step %d, which the resumed run "
                 "writes again.", dropped, last_step)
  return new


def __getattr__(name):
  """`events.event_pb2` (the TensorBoard Event proto) is loaded on first use (PEP 562):
  tensorboardX imports torch (seconds) when installed."""
  if name == "event_pb2":
    from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
    return event_pb2
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
