"""Base forecasters: what TSDiff refines and what train-on-synthetic-test-on-real trains.

A forecaster entry of `BASE_FORECASTERS` is fit(windows, context, horizon, **options) ->
predict, with windows (N, context + horizon) training examples (univariate) and
predict(contexts (N, context)) -> (N, horizon) point forecasts.
  seasonal_naive  y_{T+h} = y_{T+h-season} (no fitting; needs horizon <= season <= context)
  linear          ridge regression of the horizon on the context and a bias (the linear
                  model of TSDiff's Table 3 and of its linear predictive score)
"""
import numpy as np

from diffjax.errors import ConfigError
from diffjax.registry import Registry

BASE_FORECASTERS = Registry("base forecaster")


@BASE_FORECASTERS.register("seasonal_naive")
def seasonal_naive(windows, context, horizon, season=12):
  del windows  # Nothing to fit.
  if not horizon <= season <= context:
    raise ConfigError(f"The seasonal-naive forecast needs horizon <= season <= context; got "
                      f"horizon={horizon}, season={season}, context={context}.")
  return lambda contexts: np.asarray(contexts)[:, context - season:context - season + horizon]


@BASE_FORECASTERS.register("linear")
def linear(windows, context, horizon, ridge=1e-2, season=12):
  del season
  windows = np.asarray(windows, np.float64)
  if windows.shape[1] != context + horizon:
    raise ConfigError(f"Training windows have {windows.shape[1]} steps; the linear "
                      f"forecaster needs context + horizon = {context + horizon}.")
  design = np.concatenate([windows[:, :context], np.ones((len(windows), 1))], 1)
  gram = design.T @ design + ridge * len(windows) * np.eye(context + 1)
  weights = np.linalg.solve(gram, design.T @ windows[:, context:])

  def predict(contexts):
    contexts = np.asarray(contexts, np.float64)
    return np.concatenate([contexts, np.ones((len(contexts), 1))], 1) @ weights
  return predict


def fit_forecaster(name, windows, context, horizon, **options):
  """The `predict` of forecaster `name` fitted on `windows`."""
  return BASE_FORECASTERS.get(name)(windows, context, horizon, **options)
