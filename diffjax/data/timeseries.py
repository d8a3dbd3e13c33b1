"""A real univariate time series bundled with a maintained package, windowed into examples.

The El Niño series of statsmodels (`statsmodels.datasets.elnino`, statsmodels is
BSD-3-licensed; the data are public domain): monthly sea-surface temperatures (°C) of the
Niño 1+2 region, January 1950 to December 2010 (732 months), from NOAA's ERSST.V3B. It has
a strong yearly season (period 12), the seasonal-naive forecaster's baseline. statsmodels
is an optional dependency (pip install "diffjax[timeseries]"), imported only here.
"""
import numpy as np

from diffjax.errors import ConfigError

SEASON = 12
TRAIN_MONTHS = 600   # 1950-1999; 2000-2010 (132 months) is held out.


def elnino_series() -> np.ndarray:
  """(732,) float32 monthly temperatures, 1950-01 .. 2010-12."""
  try:
    from statsmodels.datasets import elnino  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConfigError("The El Niño series ships with statsmodels: pip install "
                      "statsmodels (or diffjax[timeseries]).") from None
  table = elnino.load_pandas().data
  return table.drop(columns="YEAR").to_numpy(np.float32).reshape(-1)


def sliding_windows(series, length, stride=1) -> np.ndarray:
  """(T,) -> (N, length) windows starting every `stride` steps."""
  if length > len(series):
    raise ConfigError(f"Window length {length} exceeds the series' {len(series)} steps.")
  starts = np.arange(0, len(series) - length + 1, stride)
  return np.stack([series[s:s + length] for s in starts])


def forecast_windows(series, context, horizon, first_target, stride):
  """Windows (N, context + horizon) whose horizon starts at first_target, first_target +
  stride, ... (each horizon inside the series)."""
  starts = np.arange(first_target, len(series) - horizon + 1, stride) - context
  if len(starts) == 0 or starts[0] < 0:
    raise ConfigError("No forecast window fits: lower the context or the first target.")
  return np.stack([series[s:s + context + horizon] for s in starts])


def seasonal_naive(windows, context, horizon, season=SEASON):
  """(N, context + horizon) -> (N, horizon): y_{t+h} = y_{t+h-season} (h <= season)."""
  if horizon > season or context < season:
    raise ConfigError(f"The seasonal-naive forecast needs horizon <= {season} <= context.")
  return windows[:, context - season: context - season + horizon]


def crps_from_samples(samples, truth):
  """CRPS of an ensemble: samples (S, ...) and truth (...) -> (...):
  E|X - y| - E|X - X'| / 2 ("Strictly Proper Scoring Rules", Gneiting & Raftery, eq. 20)."""
  samples = np.asarray(samples, np.float64)
  first = np.mean(np.abs(samples - truth[None]), 0)
  second = np.mean(np.abs(samples[:, None] - samples[None]), (0, 1))
  return first - 0.5 * second
