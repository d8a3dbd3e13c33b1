"""Run outputs: metrics.jsonl, TensorBoard event files, PNG plots and progress lines.

Only process 0 writes; on other processes every method is a no-op.

An evaluation is written in an order that a kill cannot tear: its figures and TensorBoard
points first (flushed), then its record in metrics.jsonl, which commits it (see
`diffjax.train.events`).
"""
import io
import time

import jax
import numpy as np
from absl import logging

from diffjax.train import events as events_lib
from diffjax.train import storage
from diffjax.train import workdir as workdir_lib


def figure_to_png(fig) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  return buffer.getvalue()


class RunWriter:
  """Writes scalars to TensorBoard, evaluations to metrics.jsonl, figures as PNG files.

  Args:
    workdir: the run's directory (a local path or a URL, see `diffjax.train.storage`).
    events: write TensorBoard events (training only). The run's event files are first
      repaired for a run resumed at `resume_step` whose evaluations metrics.jsonl records
      at `evaluated_steps` (`diffjax.train.events.repair_events`).
  """

  def __init__(self, workdir: str, *, events: bool = True, resume_step: int = 0,
               evaluated_steps=()):
    self.workdir = workdir
    self.enabled = jax.process_index() == 0
    self._events = None
    if self.enabled and events:
      self._events = events_lib.repair_events(storage.workdir_path(workdir) / "events",
                                              resume_step, evaluated_steps)

  def scalars(self, step: int, values: dict):
    # Imported here, not at the top: tensorboardX imports torch (seconds) when installed.
    from tensorboardX.proto import summary_pb2  # pylint: disable=g-import-not-at-top
    if self._events is not None:
      for name, value in values.items():  # (NaN and inf are written as they are.)
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag=name, simple_value=float(value))])
        self._events.write(events_lib.event_pb2.Event(wall_time=time.time(),
                                                      step=int(step), summary=summary))

  def _image(self, step: int, tag: str, png: bytes):
    # Imported here, not at the top: tensorboardX imports torch (seconds) when installed.
    from tensorboardX.proto import summary_pb2  # pylint: disable=g-import-not-at-top
    if self._events is not None:
      summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
          tag=tag, image=_png_summary_image(png))])
      self._events.write(events_lib.event_pb2.Event(wall_time=time.time(), step=int(step),
                                                    summary=summary))

  def figures(self, step: int, figures: dict, directory: str = "plots", suffix: str = ""):
    """Saves each matplotlib figure as <directory>/<name>_<step><suffix>.png (and as a
    TensorBoard image when writing events). A figure that cannot be drawn (e.g. of
    non-finite samples) is skipped with a warning."""
    if not self.enabled:
      return
    plot_dir = storage.workdir_path(self.workdir) / directory
    storage.makedirs(plot_dir)
    for name, fig in figures.items():
      try:
        png = figure_to_png(fig)
      except (ValueError, OverflowError) as error:
        logging.warning("Figure %r at step %d not written: %s", name, step, error)
        continue
      storage.write_bytes(plot_dir / f"{name}_{step:07d}{suffix}.png", png)
      self._image(step, f"plots/{name}", png)

  def evaluation(self, step: int, values: dict, figures: dict, mode: str = None):
    """Writes one evaluation: figures, TensorBoard scalars eval/<name> (flushed), then the
    record {"step": step, **values} in metrics.jsonl (kept in step order; a non-finite
    value is written as null, `workdir.finite_or_null`). An evaluation
    of --mode=eval adds "mode": "eval" to its record and "_eval" to its figures' names."""
    if not self.enabled:
      return
    self.figures(step, figures, suffix=f"_{mode}" if mode else "")
    self.scalars(step, {f"eval/{k}": v for k, v in values.items()
                        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)})
    self.flush()
    record = {"step": int(step), **{k: _jsonable(v) for k, v in values.items()}}
    if mode:
      record["mode"] = mode
    workdir_lib.add_metrics_record(self.workdir, record)

  def flush(self):
    if self._events is not None:
      self._events.flush()

  def close(self):
    if self._events is not None:
      self._events.close()


def _png_summary_image(png: bytes):
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  import matplotlib.image  # pylint: disable=g-import-not-at-top
  # Imported here, not at the top: tensorboardX imports torch (seconds) when installed.
  from tensorboardX.proto import summary_pb2  # pylint: disable=g-import-not-at-top
  height, width, channels = matplotlib.image.imread(io.BytesIO(png), format="png").shape
  return summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                   encoded_image_string=png)


def _jsonable(value):
  if isinstance(value, (np.generic, jax.Array)):
    return np.asarray(value).item()
  return value


class Progress:
  """Logs 'step i/n | loss | steps/s | ETA' lines; rates exclude compilation time, and a
  line before any timed call says how long compiling took instead."""

  def __init__(self, total_steps: int):
    self.total = total_steps
    self._timed_steps = 0
    self._timed_seconds = 0.0
    self._compile_seconds = 0.0
    self._last = time.perf_counter()

  def restart_clock(self):
    self._last = time.perf_counter()

  def advance(self, num_steps: int, timed: bool = True):
    now = time.perf_counter()
    if timed:
      self._timed_steps += num_steps
      self._timed_seconds += now - self._last
    else:
      self._compile_seconds += now - self._last
    self._last = now

  @property
  def steps_per_second(self) -> float:
    return self._timed_steps / self._timed_seconds if self._timed_seconds > 0 else 0.0

  def log(self, step: int, loss: float):
    rate = self.steps_per_second
    if rate > 0:
      eta = time.strftime("%H:%M:%S", time.gmtime((self.total - step) / rate))
      timing = f"{rate:.1f} steps/s | ETA {eta}"
    else:
      timing = f"compiled and ran in {self._compile_seconds:.1f} s (rate from the next line)"
    logging.info("step %d/%d | loss %.5f | %s", step, self.total, loss, timing)


def describe_non_finite(values: dict):
  """The names of metric values that are, or hold, NaN or inf, for a warning."""
  return [k for k, v in values.items()
          if workdir_lib.finite_or_null(_jsonable(v)) != _jsonable(v)]
