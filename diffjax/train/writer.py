"""Run outputs: metrics.jsonl, TensorBoard event files, PNG plots and progress lines.

Only process 0 writes; on other processes every method is a no-op.
"""
import io
import json
import os
import time

import jax
import matplotlib.image
import numpy as np
from absl import logging
from tensorboardX import SummaryWriter  # Pure Python; no TensorFlow needed.


def figure_to_png(fig) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  return buffer.getvalue()


class RunWriter:
  """Writes scalars to TensorBoard, evaluations to metrics.jsonl, figures to plots/."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.enabled = jax.process_index() == 0
    self._tb = None
    if self.enabled:
      self._tb = SummaryWriter(os.path.join(workdir, "events"))

  def scalars(self, step: int, values: dict):
    if self.enabled:
      for name, value in values.items():
        self._tb.add_scalar(name, float(value), step)

  def evaluation(self, step: int, values: dict):
    """Appends one JSON object {"step": step, **values} to metrics.jsonl."""
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _jsonable(v) for k, v in values.items()}}
    with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
      f.write(json.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())
    self.scalars(step, {f"eval/{k}": v for k, v in values.items()
                        if isinstance(v, (int, float, np.number))})

  def figures(self, step: int, figures: dict):
    """Saves each matplotlib figure as plots/<name>_<step>.png and a TensorBoard image."""
    if not self.enabled:
      return
    plot_dir = os.path.join(self.workdir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    for name, fig in figures.items():
      png = figure_to_png(fig)
      with open(os.path.join(plot_dir, f"{name}_{step:07d}.png"), "wb") as f:
        f.write(png)
      image = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
      self._tb.add_image(f"plots/{name}", image, step, dataformats="HWC")

  def flush(self):
    if self.enabled:
      self._tb.flush()

  def close(self):
    if self.enabled:
      self._tb.close()


def _jsonable(value):
  if isinstance(value, (np.generic, jax.Array)):
    return np.asarray(value).item()
  return value


class Progress:
  """Logs 'step i/n | loss | steps/s | ETA' lines; rates exclude compilation time."""

  def __init__(self, total_steps: int):
    self.total = total_steps
    self._timed_steps = 0
    self._timed_seconds = 0.0
    self._last = time.perf_counter()

  def restart_clock(self):
    self._last = time.perf_counter()

  def advance(self, num_steps: int, timed: bool = True):
    now = time.perf_counter()
    if timed:
      self._timed_steps += num_steps
      self._timed_seconds += now - self._last
    self._last = now

  @property
  def steps_per_second(self) -> float:
    return self._timed_steps / self._timed_seconds if self._timed_seconds > 0 else 0.0

  def log(self, step: int, loss: float):
    rate = self.steps_per_second
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) else "?"
    logging.info("step %d/%d | loss %.5f | %.1f steps/s | ETA %s",
                 step, self.total, loss, rate, eta_text)
