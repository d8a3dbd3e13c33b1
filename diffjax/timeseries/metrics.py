"""Scores of probabilistic forecasts and ensembles (NumPy, float64).

crps_ensemble   the continuous ranked probability score of an ensemble against the truth,
                CRPS = E|X - y| - E|X - X'| / 2 ("Strictly Proper Scoring Rules,
                Prediction, and Estimation", Gneiting & Raftery 2007, eq. 21), from the
                sorted members: E|X - X'| = 2 / M^2 sum_i (2 i - M - 1) x_(i). The "fair"
                version divides by M (M - 1) instead of M^2 ("Fair scores for ensemble
                forecasts", Ferro 2014): unbiased for the CRPS of the distribution the M
                members are drawn from, whatever M.
crps_gaussian   its closed form for a N(mu, sigma^2) forecast, sigma [z (2 Phi(z) - 1) +
                2 phi(z) - 1 / sqrt(pi)], z = (y - mu) / sigma (Gneiting & Raftery, eq. 22).
spread_skill    ensemble spread over the RMSE of the ensemble mean, with the finite-ensemble
                factor sqrt((M + 1) / M) ("Why should ensemble spread match the RMSE of the
                ensemble mean?", Fortin et al. 2014, eq. 7): 1 for a reliable ensemble.
rank_histogram  counts of the truth's rank among the members (M + 1 bins): flat for a
                reliable ensemble, U-shaped for an under-dispersive one (Hamill 2001).
"""
import math

import numpy as np
from scipy import special


def _members_first(samples, truth, axis):
  samples = np.moveaxis(np.asarray(samples, np.float64), axis, 0)
  truth = np.asarray(truth, np.float64)
  if samples.shape[1:] != truth.shape:
    raise ValueError(f"The ensemble's shape without its member axis, {samples.shape[1:]}, "
                     f"differs from the truth's {truth.shape}.")
  return samples, truth


def crps_ensemble(samples, truth, axis=0, fair=False):
  """CRPS of ensemble `samples` (members on `axis`) against `truth` (the samples' shape
  without that axis): an array shaped like truth. fair=True: Ferro's unbiased version."""
  samples, truth = _members_first(samples, truth, axis)
  m = samples.shape[0]
  if fair and m < 2:
    raise ValueError("The fair CRPS needs at least two members.")
  ordered = np.sort(samples, axis=0)
  weights = (2 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * truth.ndim)
  pair_sum = 2 * np.sum(weights * ordered, 0)        # sum_ij |x_i - x_j|
  spread = pair_sum / (m * (m - 1) if fair else m * m)
  return np.mean(np.abs(samples - truth[None]), 0) - 0.5 * spread


def crps_gaussian(mean, std, truth):
  """Closed-form CRPS of N(mean, std^2) at `truth` (broadcast together)."""
  mean, std, truth = (np.asarray(a, np.float64) for a in (mean, std, truth))
  z = (truth - mean) / std
  cdf = 0.5 * (1 + special.erf(z / math.sqrt(2)))
  pdf = np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
  return std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def spread_skill(samples, truth, axis=0):
  """(ratio, spread, skill): spread = sqrt(mean unbiased member variance), skill = RMSE of
  the ensemble mean, ratio = sqrt((M + 1) / M) spread / skill (1: reliable)."""
  samples, truth = _members_first(samples, truth, axis)
  m = samples.shape[0]
  spread = math.sqrt(float(np.mean(np.var(samples, 0, ddof=1))))
  skill = math.sqrt(float(np.mean((samples.mean(0) - truth) ** 2)))
  return math.sqrt((m + 1) / m) * spread / skill, spread, skill


def rank_histogram(samples, truth, axis=0):
  """(M + 1,) counts of the truth's rank (the number of members below it)."""
  samples, truth = _members_first(samples, truth, axis)
  ranks = np.sum(samples < truth[None], 0).reshape(-1)
  return np.bincount(ranks, minlength=samples.shape[0] + 1)


def mean_absolute_error(forecast, truth):
  """mean |forecast - truth| (the CRPS of a point forecast)."""
  return float(np.mean(np.abs(np.asarray(forecast, np.float64) - truth)))
