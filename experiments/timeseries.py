"""Probabilistic forecasting of a real time series by TSDiff self-guidance.

An unconditional model of windows of context + horizon months of the El Niño series
(`diffjax.data.timeseries`, standardised by the training months' mean and std) is trained
on every window of 1950-1999; evaluation forecasts the held-out years 2000-2010 by
guiding it towards the observed context (sample.guidance, method "tsdiff": squared or
quantile energy on the context entries) and scores the forecasts by CRPS (°C, averaged
over horizons and windows) against the seasonal-naive forecast (last year's value, whose
CRPS is its absolute error). Config sections read here: data (context, horizon, stride),
eval (num_forecast_samples); the pipeline reads the rest.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data import timeseries
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_record
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

TIMESERIES_KEYS = (
    Key("data.context", "int", 1, meaning="observed months per window"),
    Key("data.horizon", "int", 1, meaning="forecast months per window"),
    Key("data.stride", "int", 1, meaning="months between held-out windows"),
    Key("eval.num_forecast_samples", "int", 1, meaning="forecasts per window"),
)


def build_task(config) -> Task:
  check_keys(config, TIMESERIES_KEYS)
  series = timeseries.elnino_series()
  context, horizon = config.data.context, config.data.horizon
  length = context + horizon
  train = series[:timeseries.TRAIN_MONTHS]
  mean, std = float(train.mean()), float(train.std())
  scale = lambda x: (x - mean) / std
  windows = jnp.asarray(scale(timeseries.sliding_windows(train, length)))
  tests = timeseries.forecast_windows(series, context, horizon, timeseries.TRAIN_MONTHS,
                                      config.data.stride)
  naive = timeseries.seasonal_naive(tests, context, horizon)
  pipeline = build_pipeline(config, DataSpec((length,)))
  batch_size = config.train.batch_size

  def loss(params, key, shard, step):
    del step
    k_pick, k_loss = jax.random.split(key)
    idx = jax.random.randint(k_pick, (batch_size,), 0, windows.shape[0])
    return pipeline.loss(params, k_loss, shard, windows[idx])

  samples_per = config.eval.num_forecast_samples
  observed = np.repeat(scale(tests) * (np.arange(length) < context), samples_per, 0)
  mask = np.broadcast_to((np.arange(length) < context).astype(np.float32), observed.shape)

  @jax.jit
  def forecast(params, key):
    result = pipeline.generate(params, key, observed.shape[0], observed=jnp.asarray(observed),
                               mask=jnp.asarray(mask))
    return result.x * std + mean

  def evaluate(params, key):
    draws = np.asarray(parallel.to_host(forecast(params, key)))
    draws = draws.reshape(len(tests), samples_per, length)[:, :, context:]
    truth = tests[:, context:]
    crps = timeseries.crps_from_samples(np.moveaxis(draws, 1, 0), truth)
    values = {"crps": float(np.mean(crps)),
              "seasonal_naive_crps": float(np.mean(np.abs(naive - truth))),
              "median_mae": float(np.mean(np.abs(np.median(draws, 1) - truth)))}
    return values, {"forecasts": _figure(tests, draws, naive, context, values)}

  def sample(params, key):
    draws = np.asarray(parallel.to_host(forecast(params, key)))
    return {"forecasts": draws.reshape(len(tests), samples_per, length),
            "windows": tests}, {}

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              record=pipeline_record(pipeline),
              batch_size=batch_size)


def _figure(tests, draws, naive, context, values):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  shown = min(4, len(tests))
  figure, axes = plt.subplots(1, shown, figsize=(4 * shown, 3), squeeze=False)
  months = np.arange(tests.shape[1])
  for ax, window, ens, nv in zip(axes[0], tests, draws, naive):
    ax.plot(months, window, "k", lw=1, label="observed")
    lo, mid, hi = np.percentile(ens, [5, 50, 95], axis=0)
    ax.fill_between(months[context:], lo, hi, alpha=0.3, label="90% band")
    ax.plot(months[context:], mid, "C0", label="median")
    ax.plot(months[context:], nv, "C3--", label="seasonal naive")
  axes[0][0].legend(fontsize=7)
  figure.suptitle(f"El Niño 1+2 forecasts: CRPS {values['crps']:.3f} vs seasonal naive "
                  f"{values['seasonal_naive_crps']:.3f} (°C)")
  return figure


