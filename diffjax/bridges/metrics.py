"""Earth mover's distance between predicted and held-out snapshots.

The EMD of the snapshot studies ("Multi-marginal Schrödinger Bridges with Iterative
Reference Refinement", Shen et al., Sec. 5, following TrajectoryNet) is the exact
1-Wasserstein distance with Euclidean ground cost between two uniform point clouds,
solved here by POT's network simplex in float64.
"""
import numpy as np


def earth_movers_distance(x, y):
  """Exact W1 between uniform empirical measures: x (N, D), y (M, D) -> float."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f"Expected (N, D) and (M, D) point clouds; got {x.shape} and "
                     f"{y.shape}.")
  # Imported here, not at the top: POT imports torch (seconds) when installed.
  import ot  # pylint: disable=g-import-not-at-top
  cost = ot.dist(x, y, metric="euclidean")
  return float(ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost,
                       numItermax=10_000_000))
