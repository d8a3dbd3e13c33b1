"""Evaluating a learned bridge: simulated ends and moments against the closed form."""
import jax
import numpy as np

from diffjax.bridges.gaussian import GaussianBridge
from diffjax.bridges.simulate import simulate_backward, simulate_forward

REPORT_TIMES = (0.25, 0.5, 0.75)


def simulate_ends(forward_drift, backward_drift, x0, x1, ts, key, sigma):
  """Paths of the learned bridge both ways: forward from x0 (B, D) and backward from
  x1 (B, D) on the increasing grid ts. Returns (forward (N + 1, B, D) in time order,
  backward (N + 1, B, D) in time order, i.e. its row 0 is at t = 0)."""
  k_fwd, k_bwd = jax.random.split(key)
  forward = simulate_forward(forward_drift, x0, ts, k_fwd, sigma).trajectory
  backward = simulate_backward(backward_drift, x1, ts, k_bwd, sigma).trajectory
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

