"""Unpaired snapshots of a population at a few times: simulators and a file format.

A `Snapshots` holds times tau_0 < ... < tau_K and, at each, a point cloud (n_k, D) whose
rows are unpaired across times (a population observed destructively, as in single-cell
data). The studies of "Multi-marginal Schrödinger Bridges with Iterative Reference
Refinement" (Shen, Berlinghieri & Broderick, AISTATS 2025, Sec. 5) train on the
even-indexed snapshots and hold out the odd-indexed ones (`split_alternate`).

Simulators (`SNAPSHOT_SYSTEMS`) integrate a stochastic system dX = f(params, X) dtau +
sigma dW by Euler–Maruyama on a fine grid from a Gaussian cloud and shuffle every snapshot:
- `lotka_volterra`: du = (alpha u - beta u v) dtau, dv = (delta u v - gamma v) dtau;
- `repressilator`: three genes, dx_i = (beta / (1 + (x_{i-1} / k)^n) - gamma x_i) dtau
  (Elowitz & Leibler, Nature 2000, protein-only form).
Users' own data: an `.npz` file with `times` (K,) and either `points` (K, n, D) or
`snapshot_0`, ..., `snapshot_{K-1}`, each (n_k, D) (`load_snapshots`, `save_snapshots`).
"""
import os
from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.bridges.reference import reference_process
from diffjax.bridges.simulate import simulate_forward
from diffjax.errors import ConfigError
from diffjax.registry import Registry

SNAPSHOT_SYSTEMS = Registry("snapshot system")


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
  times = np.asarray(times, np.float64).reshape(-1)
  points = tuple(np.asarray(p, np.float32) for p in points)
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
  with data:
    if "times" not in data:
      raise ConfigError(f"Snapshot file {path!r} has no 'times' array; it holds "
                        f"{sorted(data.files)}.")
    times = data["times"]
    if "points" in data:
      points = list(data["points"])
    else:
      names = [f"snapshot_{k}" for k in range(np.size(times))]
      missing = [n for n in names if n not in data]
      if missing:
        raise ConfigError(f"Snapshot file {path!r} needs 'points' (K, n, D) or "
                          f"{names[0]}..{names[-1]}; missing {missing}.")
      points = [data[n] for n in names]
  return make_snapshots(times, points)


# ----------------------------------------------------------------------------------------
# Simulators


class SnapshotSystem(NamedTuple):
  """A stochastic system: its drift family, true parameters, noise and starting cloud."""
  family: str
  params: dict
  sigma: float
  start_mean: tuple
  start_std: float


SNAPSHOT_SYSTEMS.register("lotka_volterra", SnapshotSystem(
    "lotka_volterra", {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 1.0}, 0.05,
    (2.0, 1.0), 0.05))
SNAPSHOT_SYSTEMS.register("repressilator", SnapshotSystem(
    "repressilator", {"beta": 10.0, "n": 3.0, "k": 1.0, "gamma": 1.0}, 0.1,
    (1.0, 3.0, 6.0), 0.2))


def simulate_snapshots(key, system, times, num_points, steps_per_unit=100,
                       params=None, sigma=None) -> Snapshots:
  """Unpaired snapshots of `system` (a name or a SnapshotSystem) at `times`.

  Every snapshot is an independent shuffle of num_points paths started from
  N(start_mean, start_std^2 I) at times[0] and integrated by Euler–Maruyama with about
  `steps_per_unit` steps per unit of time (each interval split evenly). params / sigma
  override the system's values.
  """
  system = SNAPSHOT_SYSTEMS.get(system) if isinstance(system, str) else system
  times = make_snapshots(times, [np.zeros((1, 1))] * len(times)).times
  mean = np.asarray(system.start_mean, np.float32)
  reference = reference_process(system.family, system.sigma if sigma is None else sigma,
                                system.params if params is None else params, len(mean))
  span = times[-1] - times[0]
  reference = reference.rescaled(times[0], span)
  counts = np.maximum(1, np.round(np.diff(times) * steps_per_unit).astype(int))
  grid = [np.array([0.0])]
  for k, n in enumerate(counts):
    grid.append(np.linspace(times[k], times[k + 1], n + 1)[1:])
  grid = (np.concatenate(grid) - times[0]) / span
  grid[-1] = 1.0
  marks = np.concatenate([[0], np.cumsum(counts)])
  k_start, k_path, k_shuffle = jax.random.split(key, 3)
  x0 = mean[None] + system.start_std * jax.random.normal(k_start, (num_points, len(mean)))
  trajectory = simulate_forward(reference.drift, x0, jnp.asarray(grid, jnp.float32), k_path,
                                reference.diffusion()).trajectory
  points = []
  for k, mark in enumerate(marks):
    order = jax.random.permutation(jax.random.fold_in(k_shuffle, k), num_points)
    points.append(np.asarray(trajectory[mark][order]))
  return make_snapshots(times, points)
