"""Multi-marginal bridges through snapshots: a piecewise bridge between adjacent snapshots.

Given snapshots at bridge times 0 = t_0 < ... < t_K = 1 (`diffjax.data.snapshots`, mapped
to [0, 1] by `Reference.rescaled`), the multi-marginal Schrödinger bridge of "Multi-marginal
Schrödinger Bridges with Iterative Reference Refinement" (Shen, Berlinghieri & Broderick,
AISTATS 2025, Sec. 3) is fitted segment by segment: on each [t_k, t_{k+1}] an IPF bridge
between snapshots k and k + 1 under the reference. One forward and one backward network
of (x, t) serve every segment (their time input tells segments apart); the segments'
trajectory caches are simulated together (`jax.vmap` over segments of the one
`integrate`). Predictions at a held-out time in (t_k, t_{k+1}) run the forward drift from
snapshot k and the backward drift from snapshot k + 1 and pool both halves
(`segment_paths` and `grid_position`), as the paper's forward-and-backward interpolation
does.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.bridges import mean_matching
from diffjax.bridges.simulate import simulate


class SnapshotArrays(NamedTuple):
  """Device-side snapshots: times (K + 1,) in bridge time, points (K + 1, n_max, D)
  zero-padded, counts (K + 1,) int32 (rows beyond a count are padding)."""
  times: jax.Array
  points: jax.Array
  counts: jax.Array


def snapshot_arrays(snapshots, t_offset, time_scale) -> SnapshotArrays:
  """`diffjax.data.snapshots.Snapshots` on the bridge time t = (tau - t_offset) /
  time_scale, as device arrays."""
  points, counts = snapshots.padded()
  times = (np.asarray(snapshots.times) - t_offset) / time_scale
  return SnapshotArrays(jnp.asarray(times, jnp.float32), jnp.asarray(points),
                        jnp.asarray(counts))


def segment_grids(times, steps_per_segment):
  """(K, N + 1) increasing grids, N = steps_per_segment, one per [t_k, t_{k+1}]."""
  fractions = jnp.linspace(0.0, 1.0, steps_per_segment + 1)
  return times[:-1, None] + (times[1:] - times[:-1])[:, None] * fractions[None]


def draw_points(data: SnapshotArrays, index, key, num):
  """num points drawn uniformly (with replacement) from snapshot `index`: (num, D)."""
  rows = jax.random.randint(key, (num,), 0, data.counts[index])
  return data.points[index][rows]


def segment_starts(data: SnapshotArrays, key, num, side):
  """(K, num, D): draws from snapshots 0..K-1 (side "left", where forward paths start) or
  1..K (side "right", where backward paths start)."""
  num_segments = data.times.shape[0] - 1
  first = 0 if side == "left" else 1
  keys = jax.random.split(key, num_segments)
  return jax.vmap(lambda k, i: draw_points(data, i + first, k, num))(
      keys, jnp.arange(num_segments))


def segment_caches(drift: Callable, data: SnapshotArrays, grids, key, num_paths,
                   diffusion, direction) -> mean_matching.TrajectoryCache:
  """IPF trajectory caches of every segment, merged along the time axis (K N, M, D):
  paths of `drift` forward from the left snapshots (fits the backward drift) or backward
  from the right snapshots (fits the forward drift)."""
  k_start, k_path = jax.random.split(key)
  starts = segment_starts(data, k_start, num_paths,
                          "left" if direction == "forward" else "right")
  keys = jax.random.split(k_path, starts.shape[0])
  cache = lambda x, ts, k: mean_matching.simulate_cache(drift, x, ts, k, diffusion,
                                                       direction)
  caches = jax.vmap(cache)(starts, grids, keys)
  merge = lambda a: a.reshape((-1,) + a.shape[2:])
  return mean_matching.TrajectoryCache(*(merge(a) for a in caches))


def segment_forward_paths(forward_drift: Callable, data: SnapshotArrays, grids, key,
                          num_paths, diffusion):
  """Paths of the forward drift from each left snapshot across its segment:
  (K, N + 1, num_paths, D) on `grids`."""
  k_start, k_path = jax.random.split(key)
  starts = segment_starts(data, k_start, num_paths, "left")
  keys = jax.random.split(k_path, starts.shape[0])
  simulate_one = lambda x, ts, k: simulate(forward_drift, x, ts, k, diffusion, "forward")
  return jax.vmap(simulate_one)(starts, grids, keys).trajectory


def segment_paths(forward_drift: Callable, backward_drift: Callable, data: SnapshotArrays,
                  grids, key, num_paths, diffusion):
  """Bridged paths of every segment, in forward time: forward from the left snapshot and
  backward from the right one, stacked as (K, N + 1, 2 num_paths, D) on `grids`."""
  k_start, k_fwd, k_bwd = jax.random.split(key, 3)
  left = segment_starts(data, k_start, num_paths, "left")
  right = segment_starts(data, jax.random.fold_in(k_start, 1), num_paths, "right")
  count = left.shape[0]

  def one(x_left, x_right, ts, k1, k2):
    forward = simulate(forward_drift, x_left, ts, k1, diffusion, "forward").trajectory
    backward = simulate(backward_drift, x_right, ts, k2, diffusion, "backward").trajectory
    return jnp.concatenate([forward, backward[::-1]], 1)

  return jax.vmap(one)(left, right, grids, jax.random.split(k_fwd, count),
                       jax.random.split(k_bwd, count))


def grid_position(times, t_query, steps_per_segment):
  """(k, j): the segment k with t_k < t_query < t_{k+1} and the index j of its grid time
  (`segment_grids`) nearest t_query, so that `segment_paths(...)[k, j]` are the bridge's
  samples at t_query (forward from snapshot k and backward from snapshot k + 1, pooled)."""
  times = np.asarray(times, np.float64)
  k = int(np.searchsorted(times, t_query) - 1)
  if not 0 <= k < len(times) - 1 or np.any(np.isclose(times, t_query)):
    raise ValueError(f"t_query = {t_query} must lie strictly between snapshot times "
                     f"{times.tolist()}.")
  fraction = (t_query - times[k]) / (times[k + 1] - times[k])
  return k, int(round(fraction * steps_per_segment))
