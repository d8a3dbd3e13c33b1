"""Multichannel series with known cross-correlations: a regime-switching vector
autoregression.

Each series (L, C) is drawn in one regime r of `REGIMES` from the stationary VAR(1)
    x_t = a * x_{t-1} + e_t,  e_t ~ N(0, Sigma_r),  x_0 ~ N(0, S_r),
with per-channel coefficients a (C,) and Sigma_r = the regime's correlation matrix scaled
to unit innovations. Its stationary covariance is S_r,ij = Sigma_r,ij / (1 - a_i a_j)
(the discrete Lyapunov equation S = A S A^T + Sigma for diagonal A), so the
cross-correlations of each regime are known in closed form (`stationary_correlation`).
The population of series then has, for each channel pair, a multimodal distribution of
window correlations: the population-level property PaD-TS is built to preserve.
"""
import numpy as np

from diffjax.errors import ConfigError

# Regimes of the innovations' correlation between channel pairs, as a function of the
# channel count: strongly co-moving, alternating signs (channel i against i + 1), and
# independent.
REGIMES = ("comoving", "alternating", "independent")


def regime_correlation(regime, channels, rho=0.8):
  """(C, C) correlation matrix of the innovations in `regime`."""
  if regime == 0:
    corr = np.full((channels, channels), rho)
  elif regime == 1:
    signs = (-1.0) ** np.arange(channels)
    corr = rho * np.outer(signs, signs)
  else:
    corr = np.zeros((channels, channels))
  np.fill_diagonal(corr, 1.0)
  return corr


def default_coefficients(channels):
  """(C,) AR coefficients spread over [0.5, 0.9]."""
  return np.linspace(0.5, 0.9, channels)


def stationary_covariance(regime, coefficients, rho=0.8):
  """(C, C) stationary covariance S_ij = Sigma_ij / (1 - a_i a_j)."""
  a = np.asarray(coefficients, np.float64)
  return regime_correlation(regime, len(a), rho) / (1 - np.outer(a, a))


def stationary_correlation(regime, coefficients, rho=0.8):
  """(C, C) stationary cross-correlation of the channels in `regime`."""
  cov = stationary_covariance(regime, coefficients, rho)
  d = np.sqrt(np.diag(cov))
  return cov / np.outer(d, d)


def correlated_series(seed, num_series, length, channels=4, rho=0.8, coefficients=None,
                      regime_weights=None):
  """(series (N, L, C) float32, regimes (N,) int): N stationary windows, each in a regime
  drawn with `regime_weights` (default uniform over `REGIMES`)."""
  if channels < 2:
    raise ConfigError(f"Correlated series need at least 2 channels; got {channels}.")
  if not 0.0 <= rho < 1.0:
    raise ConfigError(f"The innovations' correlation rho must be in [0, 1); got {rho}.")
  a = default_coefficients(channels) if coefficients is None else np.asarray(coefficients)
  if a.shape != (channels,) or np.any(np.abs(a) >= 1):
    raise ConfigError(f"AR coefficients must be {channels} values in (-1, 1); got {a}.")
  weights = np.full(len(REGIMES), 1 / len(REGIMES)) if regime_weights is None else (
      np.asarray(regime_weights, np.float64) / np.sum(regime_weights))
  rng = np.random.default_rng(seed)
  regimes = rng.choice(len(REGIMES), num_series, p=weights)
  series = np.empty((num_series, length, channels))
  for r in range(len(REGIMES)):
    idx = np.flatnonzero(regimes == r)
    innovation = np.linalg.cholesky(regime_correlation(r, channels, rho) + 1e-9 * np.eye(
        channels))
    start = np.linalg.cholesky(stationary_covariance(r, a, rho))
    x = rng.standard_normal((len(idx), channels)) @ start.T
    for t in range(length):
      if t:
        x = a * x + rng.standard_normal((len(idx), channels)) @ innovation.T
      series[idx, t] = x
  return series.astype(np.float32), regimes
