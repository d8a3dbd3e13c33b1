"""Unpaired snapshots of a population at a few times: the container and a file format.

A `Snapshots` holds times tau_0 < ... < tau_K and, at each, a point cloud (n_k, D) whose
rows are unpaired across times (a population observed destructively, as in single-cell
data). The studies of "Multi-marginal Schrödinger Bridges with Iterative Reference
Refinement" (Shen, Berlinghieri & Broderick, AISTATS 2025, Sec. 5) train on the
even-indexed snapshots and hold out the odd-indexed ones (`split_alternate`).

Simulated snapshots of stochastic systems (Lotka–Volterra, the repressilator) are in
`diffjax.bridges.systems`: their drifts are the bridges' reference families. Users' own
data: an `.npz` file with `times` (K,) and either `points` (K, n, D) or
`snapshot_0`, ..., `snapshot_{K-1}`, each (n_k, D) (`load_snapshots`, `save_snapshots`).
"""
import os
from typing import NamedTuple, Tuple

import numpy as np

from diffjax.errors import ConfigError


class Snapshots(NamedTuple):
  """times (K,) float64, strictly increasing; points: K arrays (n_k, D) float32."""
  times: np.ndarray
  points: Tuple[np.ndarray, ...]

  @property
  def dim(self) -> int:
    return self.points[0].shape[1]

  def __len__(self):
    return len(self.times)

  def select(self, indices) -> "Snapshots":
    indices = list(indices)
    return Snapshots(self.times[indices], tuple(self.points[i] for i in indices))

  def padded(self):
    """(points (K, n_max, D) zero-padded, counts (K,) int32) for device-side sampling."""
    counts = np.array([len(p) for p in self.points], np.int32)
    out = np.zeros((len(self), counts.max(), self.dim), np.float32)
    for k, p in enumerate(self.points):
      out[k, :len(p)] = p
    return out, counts


def make_snapshots(times, points) -> Snapshots:
  """Validated snapshots: at least two, strictly increasing finite times, point clouds of
  shape (n_k >= 1, D) with one D and finite values. Raises ConfigError naming the
  problem."""
  try:
    times = np.asarray(times, np.float64).reshape(-1)
    points = tuple(np.asarray(p, np.float32) for p in points)
  except (TypeError, ValueError) as error:
    raise ConfigError(f"Snapshot times and points must be numeric arrays: {error}"
                      ) from None
  if len(times) != len(points):
    raise ConfigError(f"Got {len(times)} snapshot times but {len(points)} point clouds; "
                      "give one time per snapshot.")
  if len(times) < 2:
    raise ConfigError(f"A bridge needs at least two snapshots; got {len(times)}.")
  if not np.all(np.isfinite(times)):
    raise ConfigError(f"Snapshot times must be finite; got {times.tolist()}.")
  steps = np.diff(times)
  if np.any(steps <= 0):
    k = int(np.argmax(steps <= 0))
    what = "repeated" if steps[k] == 0 else "decreasing"
    raise ConfigError(f"Snapshot times must be strictly increasing; times[{k}] = "
                      f"{times[k]} and times[{k + 1}] = {times[k + 1]} are {what}.")
  for k, p in enumerate(points):
    if p.ndim != 2 or p.shape[0] < 1:
      raise ConfigError(f"Snapshot {k} (time {times[k]}) must be an (n, D) array with "
                        f"n >= 1; got shape {p.shape}.")
    if p.shape[1] != points[0].shape[1]:
      raise ConfigError(f"Snapshot {k} (time {times[k]}) has dimension {p.shape[1]} but "
                        f"snapshot 0 has dimension {points[0].shape[1]}; all must agree.")
    if not np.all(np.isfinite(p)):
      raise ConfigError(f"Snapshot {k} (time {times[k]}) has non-finite values.")
  return Snapshots(times, points)


def split_alternate(snapshots: Snapshots):
  """(train, held_out): the even-indexed and the odd-indexed snapshots."""
  if len(snapshots) < 3:
    raise ConfigError(f"Holding out odd-indexed snapshots needs at least 3; got "
                      f"{len(snapshots)}.")
  return (snapshots.select(range(0, len(snapshots), 2)),
          snapshots.select(range(1, len(snapshots), 2)))


def save_snapshots(path, snapshots: Snapshots):
  arrays = {f"snapshot_{k}": p for k, p in enumerate(snapshots.points)}
  np.savez(path, times=snapshots.times, **arrays)


def load_snapshots(path) -> Snapshots:
  """Snapshots from an .npz file (module docstring); problems raise ConfigError."""
  if not os.path.exists(path):
    raise ConfigError(f"Snapshot file {path!r} does not exist.")
  try:
    data = np.load(path)
  except (OSError, ValueError) as error:
    raise ConfigError(f"Snapshot file {path!r} is not a readable .npz file: "
                      f"{error}") from None
  if not isinstance(data, np.lib.npyio.NpzFile):
    raise ConfigError(f"Snapshot file {path!r} holds a single array; it must be an .npz "
                      "archive with 'times' and 'points' (or snapshot_0, ...).")
  with data:
    try:
      times, points = _snapshot_arrays(data, path)
    except ValueError as error:    # e.g. object arrays, which np.load refuses to unpickle.
      raise ConfigError(f"Snapshot file {path!r} cannot be read: {error}") from None
  return make_snapshots(times, points)


def _snapshot_arrays(data, path):
  if "times" not in data:
    raise ConfigError(f"Snapshot file {path!r} has no 'times' array; it holds "
                      f"{sorted(data.files)}.")
  times = data["times"]
  if "points" in data:
    return times, list(data["points"])
  names = [f"snapshot_{k}" for k in range(np.size(times))]
  missing = [n for n in names if n not in data]
  if missing:
    raise ConfigError(f"Snapshot file {path!r} needs 'points' (K, n, D) or "
                      f"{names[0]}..{names[-1]}; missing {missing}.")
  return times, [data[n] for n in names]
