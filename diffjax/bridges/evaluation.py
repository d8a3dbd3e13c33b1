"""Evaluating a learned bridge: simulated ends and moments against the closed form
(two marginals), earth mover's distances at held-out snapshots (multi-marginal), and the
figures of both."""
import dataclasses
from typing import Any, Tuple

import jax
import numpy as np

from diffjax import plotting
from diffjax.bridges import multimarginal, plots
from diffjax.bridges.gaussian import GaussianBridge
from diffjax.bridges.metrics import earth_movers_distance
from diffjax.bridges.simulate import simulate
from diffjax.metrics import METRICS

REPORT_TIMES = (0.25, 0.5, 0.75)


def simulate_ends(forward_drift, backward_drift, x0, x1, ts, key, sigma):
  """Paths of the learned bridge both ways: forward from x0 (B, D) and backward from
  x1 (B, D) on the increasing grid ts. Returns (forward (N + 1, B, D) in time order,
  backward (N + 1, B, D) in time order, i.e. its row 0 is at t = 0)."""
  k_fwd, k_bwd = jax.random.split(key)
  forward = simulate(forward_drift, x0, ts, k_fwd, sigma, "forward").trajectory
  backward = simulate(backward_drift, x1, ts, k_bwd, sigma, "backward").trajectory
  return forward, backward[::-1]


def relative_error(estimate, exact):
  """||estimate - exact||_F / ||exact||_F."""
  exact = np.asarray(exact, np.float64)
  error = np.linalg.norm(np.asarray(estimate, np.float64) - exact)
  return float(error / np.linalg.norm(exact))


def _covariance(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return (x - x.mean(0)).T @ (y - y.mean(0)) / (len(x) - 1)


def gaussian_report(bridge: GaussianBridge, trajectory, ts, prefix="",
                    times=REPORT_TIMES):
  """Relative Frobenius errors of a simulated bridge's moments against the closed form.

  trajectory: (N + 1, B, D) paths on the grid ts (N + 1,) from t = 0 to 1 (forward paths,
  or backward paths in time order). Returns {prefix + name: error} for "cross_cov"
  (Cov(X_0, X_1)), "cov_t{t}" at `times` (the grid time nearest each), "cov_t1" and
  "mean_t1" (absolute error of the end mean over the end mean's scale + 1).
  """
  ts = np.asarray(ts)
  out = {prefix + "cross_cov": relative_error(_covariance(trajectory[0], trajectory[-1]),
                                              bridge.cross_covariance)}
  for t in times:
    j = int(np.argmin(np.abs(ts - t)))
    cov = _covariance(trajectory[j], trajectory[j])
    out[prefix + f"cov_t{t:g}"] = relative_error(cov, bridge.marginal(float(ts[j]))[1])
  out[prefix + "cov_t0"] = relative_error(_covariance(trajectory[0], trajectory[0]),
                                          bridge.cov0)
  out[prefix + "cov_t1"] = relative_error(_covariance(trajectory[-1], trajectory[-1]),
                                          bridge.cov1)
  end_mean = np.asarray(trajectory[-1], np.float64).mean(0)
  out[prefix + "mean_t1"] = float(np.linalg.norm(end_mean - np.asarray(bridge.mean1))
                                  / (np.linalg.norm(np.asarray(bridge.mean1)) + 1.0))
  return out


def standard_error_floor(bridge: GaussianBridge, num_samples, times=REPORT_TIMES):
  """The Monte-Carlo floor of `gaussian_report`'s covariance errors: the relative
  Frobenius norm of the sampling error of a covariance estimated from num_samples exact
  draws, sqrt(sum_ij (C_ii C_jj + C_ij^2) / n) / ||C||_F, at t = 0.5."""
  del times
  cov = np.asarray(bridge.marginal(0.5)[1], np.float64)
  d = np.diag(cov)
  return float(np.sqrt(np.sum((np.outer(d, d) + cov ** 2) / num_samples))
               / np.linalg.norm(cov))



# ----------------------------------------------------------------------------------------
# A run's evaluation: paths of the learned drifts, their values and figures. `paths` is
# traceable (the caller jit-compiles it over the parameters); `report` and `figures` take
# the paths on the host.


@dataclasses.dataclass(frozen=True)
class TwoMarginalEvaluation:
  """Forward paths from held-out rho0 draws and backward paths from held-out rho1 draws.

  Attributes:
    problem: the `diffjax.bridges.problems.TwoMarginalProblem`.
    x0, x1: (n, D) starting points of the forward and backward paths.
    x0_reference, x1_reference: (n, D) further held-out draws the paths' ends are compared
      with (host arrays).
    end_metrics: names in `diffjax.metrics.METRICS`, computed at both ends.
    num_trajectories: paths drawn in the figures.
  """
  problem: Any
  x0: jax.Array
  x1: jax.Array
  x0_reference: np.ndarray
  x1_reference: np.ndarray
  end_metrics: Tuple[str, ...]
  num_trajectories: int

  @classmethod
  def build(cls, problem, *, num_samples, seed, end_metrics=(), num_trajectories=0):
    """num_samples draws of each marginal from keys fold_in(PRNGKey(seed), 0..3), keys
    no training step uses."""
    held = jax.random.PRNGKey(seed)
    draw = lambda sampler, i: sampler(jax.random.fold_in(held, i), num_samples)
    return cls(problem, draw(problem.source, 0), draw(problem.target, 1),
               np.asarray(draw(problem.source, 2)), np.asarray(draw(problem.target, 3)),
               tuple(end_metrics), num_trajectories)

  def paths(self, forward_drift, backward_drift, key):
    """{"forward_paths", "backward_paths"}: (N + 1, n, D) each, in time order."""
    forward, backward = simulate_ends(forward_drift, backward_drift, self.x0, self.x1,
                                      self.problem.ts, key, self.problem.sigma)
    return {"forward_paths": forward, "backward_paths": backward}

  def report(self, paths):
    """End metrics at t = 1 (forward) and t = 0 (backward) against held-out draws, and,
    with an oracle, `gaussian_report` of both directions and its Monte-Carlo floor."""
    forward, backward = paths["forward_paths"], paths["backward_paths"]
    values = {}
    for name in self.end_metrics:
      metric = METRICS.get(name)
      values[f"forward_end_{name}"] = metric(forward[-1], self.x1_reference)
      values[f"backward_end_{name}"] = metric(backward[0], self.x0_reference)
    oracle = self.problem.oracle
    if oracle is not None:
      values.update(gaussian_report(oracle, forward, self.problem.ts, "forward_"))
      values.update(gaussian_report(oracle, backward, self.problem.ts, "backward_"))
      values["cov_error_floor"] = standard_error_floor(oracle, len(self.x0_reference))
    return values

  def figures(self, paths, title):
    count = min(self.num_trajectories, len(self.x0_reference))
    return {f"{direction}_paths": plotting.trajectory_figure(
        paths[f"{direction}_paths"][:, :count, :2], f"{title} ({direction})")
            for direction in ("forward", "backward")}


@dataclasses.dataclass(frozen=True)
class SnapshotEvaluation:
  """Bridged paths of every segment, forward from its left snapshot and backward from its
  right one (`multimarginal.segment_paths`), scored at the held-out times.

  Attributes:
    problem: the `diffjax.bridges.problems.SnapshotProblem`.
    num_paths: paths per segment and direction.
    num_trajectories: paths drawn in the figures (half of each direction).
  """
  problem: Any
  num_paths: int
  num_trajectories: int

  def paths(self, forward_drift, backward_drift, key):
    """{"paths": (K, N + 1, 2 num_paths, D)}: forward and backward halves."""
    p = self.problem
    return {"paths": multimarginal.segment_paths(forward_drift, backward_drift, p.arrays,
                                                 p.grids, key, self.num_paths,
                                                 p.reference.diffusion())}

  def report(self, paths):
    """The earth mover's distance at every held-out time ("emd_t<tau>") and their mean
    ("emd_mean"): both directions' samples at the grid time nearest tau, pooled."""
    p, values, emds = self.problem, {}, []
    if p.held_out is None:
      return values
    for tau, points in zip(p.held_out.times, p.held_out.points):
      k, j = multimarginal.grid_position(p.arrays.times, (tau - p.t0) / p.span,
                                         p.steps_per_segment)
      emds.append(earth_movers_distance(paths["paths"][k, j], points))
      values[f"emd_t{tau:g}"] = emds[-1]
    values["emd_mean"] = float(np.mean(emds))
    return values

  def figures(self, paths, title):
    p, count = self.problem, self.num_trajectories // 2
    segment_paths = paths["paths"]
    shown = np.concatenate([segment_paths[:, :, :count],
                            segment_paths[:, :, self.num_paths:self.num_paths + count]], 2)
    held = p.held_out if p.held_out is not None else p.train.select([])
    return {"paths": plots.snapshot_paths_figure(shown, p.train, held, title=title)}
