"""Simulated snapshots of stochastic systems whose drifts are reference families.

`SNAPSHOT_SYSTEMS` integrate a stochastic system dX = f(params, X) dtau + sigma dW by
Euler–Maruyama on a fine grid from a Gaussian cloud and shuffle every snapshot (unpaired
rows, `diffjax.data.snapshots.Snapshots`), as in the studies of "Multi-marginal
Schrödinger Bridges with Iterative Reference Refinement" (Shen, Berlinghieri & Broderick,
AISTATS 2025, Sec. 5). f is the reference family of the same name
(`diffjax.bridges.reference`), so a refined reference can recover the true parameters:
- `lotka_volterra`: du = (alpha u - beta u v) dtau, dv = (delta u v - gamma v) dtau;
- `repressilator`: three genes, dx_i = (beta / (1 + (x_{i-1} / k)^n) - gamma x_i) dtau
  (Elowitz & Leibler, Nature 2000, protein-only form).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.bridges.reference import reference_process
from diffjax.bridges.simulate import simulate
from diffjax.data.snapshots import Snapshots, make_snapshots
from diffjax.registry import Registry

SNAPSHOT_SYSTEMS = Registry("snapshot system")


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
  trajectory = simulate(reference.drift, x0, jnp.asarray(grid, jnp.float32), k_path,
                        reference.diffusion(), "forward").trajectory
  points = []
  for k, mark in enumerate(marks):
    order = jax.random.permutation(jax.random.fold_in(k_shuffle, k), num_points)
    points.append(np.asarray(trajectory[mark][order]))
  return make_snapshots(times, points)
