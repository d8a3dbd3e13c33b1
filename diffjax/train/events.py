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
"""
import os
import socket
import struct
import time

from absl import logging
from tensorboardX.crc32c import crc32c
from tensorboardX.proto import event_pb2

EVENT_FILE_MARKER = "tfevents"
EVALUATION_TAG_PREFIXES = ("eval/", "plots/")


def _masked_crc(data: bytes) -> int:
  x = crc32c(data) & 0xffffffff
  return (((x >> 15) | (x << 17)) + 0xa282ead8) & 0xffffffff


def read_records(path: str):
  """Yields the data of each intact record of a TFRecord file; stops quietly at a torn or
  corrupt tail (a write the process did not finish)."""
  with open(path, "rb") as f:
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
  events = []
  for path in event_files(directory):
    events.extend(event_pb2.Event.FromString(data) for data in read_records(path))
  return events


def event_files(directory: str):
  if not os.path.isdir(directory):
    return []
  return [os.path.join(directory, name) for name in sorted(os.listdir(directory))
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
  """One new event file in `directory`, written synchronously."""

  def __init__(self, directory: str):
    os.makedirs(directory, exist_ok=True)
    name = (f"events.out.{EVENT_FILE_MARKER}.{int(time.time())}.{socket.gethostname()}."
            f"{os.getpid()}.{time.monotonic_ns()}")
    self.path = os.path.join(directory, name)
    self._file = open(self.path, "wb")
    self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

  def write(self, event):
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    self._file.write(header + struct.pack("<I", _masked_crc(header)) + data
                     + struct.pack("<I", _masked_crc(data)))

  def flush(self):
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self):
    if not self._file.closed:
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
    os.remove(path)
  if dropped:
    logging.info("TensorBoard: dropped %d point(s) after step %d, which the resumed run "
                 "writes again.", dropped, last_step)
  return new
