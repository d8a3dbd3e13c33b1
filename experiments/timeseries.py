"""Probabilistic forecasting of a univariate series with TSDiff: predict, refine, synthesize.

An unconditional model of windows of context + horizon steps (El Niño from statsmodels, or
a user's series: data.name=file, data.file=series.csv / .npz, one channel) is trained on
every window of the training stretch (the first 600 months / data.train_fraction of a
file; standardised by its mean and std). Evaluation on windows of the held-out stretch
(`diffjax.timeseries`), every score in the series' units, averaged over horizons and
windows:
  predict     TSDiff self-guidance towards the context (sample.guidance): `crps`;
  baselines   the base forecasters of eval.refine.bases, fitted on the training windows:
              `<base>_crps` (their CRPS is the absolute error of the point forecast);
  refine      each base refined by each method of eval.refine.methods (Langevin / most
              likely, eval.refine.*; eval.refine.energy: the denoising loss at
              eval.refine.times or the ELBO over the range eval.refine.times = (t0, t1)):
              `refined_<method>_<base>_crps`, and the same
              refiner on the prior alone (no model): `prior_only_<method>_<base>_crps`;
  synthesize  eval.tstr_windows windows generated without guidance train the linear
              forecaster, tested on the held-out windows against the same forecaster
              trained on the real windows: `tstr_mae`, `trtr_mae`, `tstr_ratio`.
Config sections read here: data (name, file, context, horizon, stride, season,
train_fraction), eval (num_forecast_samples, tstr_windows, refine); the pipeline reads
the rest.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data import check_window, load_series
from diffjax.data import timeseries
from diffjax.errors import ConfigError
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_record
from diffjax.science import plots
from diffjax.timeseries import (BASE_FORECASTERS, ENERGIES, REFINERS, REGULARIZERS,
                                crps_ensemble, fit_forecaster, refine,
                                train_on_synthetic_test_on_real)
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

SOURCES = ("elnino", "file")
TIMESERIES_KEYS = (
    Key("data.name", "name", names=lambda: SOURCES),
    Key("data.context", "int", 1, meaning="observed steps per window"),
    Key("data.horizon", "int", 1, meaning="forecast steps per window"),
    Key("data.stride", "int", 1, meaning="steps between held-out windows"),
    Key("data.season", "int", 1, meaning="the seasonal-naive period"),
    Key("data.train_fraction", "float", 0.0, 1.0, open_low=True, open_high=True,
        meaning="of a file's series used for training"),
    Key("eval.num_forecast_samples", "int", 1, meaning="forecasts per window"),
    Key("eval.tstr_windows", "int", 0, meaning="synthetic windows for TSTR; 0: none"),
    Key("eval.refine.methods", "names", names=REFINERS.names),
    Key("eval.refine.bases", "names", names=BASE_FORECASTERS.names),
    Key("eval.refine.regularizer", "name", names=lambda: REGULARIZERS),
    Key("eval.refine.scale", "float", 0.0),
    Key("eval.refine.step_size", "float", 0.0, open_low=True),
    Key("eval.refine.iterations", "int", 0),
    Key("eval.refine.noise_scale", "float", 0.0),
    Key("eval.refine.times", "floats", 0.0, 1.0, open_high=True),
    Key("eval.refine.energy", "name", names=ENERGIES.names),
)


def load_data(config):
  """(series (T,), first held-out step) of config.data, checked."""
  if config.data.name == "elnino":
    series, split = timeseries.elnino_series(), timeseries.TRAIN_MONTHS
  else:
    if not config.data.get("file", ""):
      raise ConfigError("data.name=file needs data.file, the series' .csv / .npz / .npy.")
    series = load_series(config.data.file, channels=1)[:, 0]
    split = int(round(config.data.train_fraction * len(series)))
  check_window(split, config.data.context, config.data.horizon,
               "the training stretch of the series")
  if len(series) - split < config.data.horizon:
    raise ConfigError(f"The held-out stretch of the series ({len(series) - split} steps) is "
                      f"shorter than data.horizon={config.data.horizon}; lower "
                      "data.train_fraction.")
  return series, split


def build_task(config) -> Task:
  check_keys(config, TIMESERIES_KEYS)
  rc = config.eval.refine
  if not rc.times:
    raise ConfigError("eval.refine.times is empty; give at least one time in [0, 1).")
  ENERGIES.get(rc.get("energy", "denoising")).check(tuple(rc.times))
  series, split = load_data(config)
  context, horizon, season = config.data.context, config.data.horizon, config.data.season
  length = context + horizon
  train = series[:split]
  mean, std = float(train.mean()), float(train.std())
  scale = lambda x: (x - mean) / std
  train_windows = scale(timeseries.sliding_windows(train, length))
  windows = jnp.asarray(train_windows)
  tests = timeseries.forecast_windows(series, context, horizon, split, config.data.stride)
  base_predictions = {
      name: fit_forecaster(name, train_windows, context, horizon, season=season)(
          scale(tests[:, :context])) for name in rc.bases}
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

  @jax.jit
  def synthesize(params, key):
    return pipeline.generate(params, key, config.eval.tstr_windows,
                             guidance={"method": "none"}).x

  def refined(params, key, method, base, model_weight=1.0):
    out = refine(pipeline.fields(params), pipeline.path, scale(tests[:, :context]),
                 base, key, num_members=samples_per, method=method,
                 regularizer=rc.regularizer, scale=rc.scale, step_size=rc.step_size,
                 iterations=rc.iterations, noise_scale=rc.noise_scale, times=tuple(rc.times),
                 model_weight=model_weight, energy=rc.get("energy", "denoising"))
    return np.asarray(out) * std + mean

  def evaluate(params, key):
    k_forecast, k_refine, k_synth = jax.random.split(key, 3)
    draws = np.asarray(parallel.to_host(forecast(params, k_forecast)))
    draws = draws.reshape(len(tests), samples_per, length)[:, :, context:]
    truth = tests[:, context:]
    crps = lambda ensemble: float(np.mean(crps_ensemble(ensemble, truth, axis=1)))
    values = {"crps": crps(draws),
              "median_mae": float(np.mean(np.abs(np.median(draws, 1) - truth)))}
    for base, prediction in base_predictions.items():
      values[f"{base}_crps"] = float(np.mean(np.abs(prediction * std + mean - truth)))
      for i, method in enumerate(rc.methods):
        values[f"refined_{method}_{base}_crps"] = crps(
            refined(params, jax.random.fold_in(k_refine, i), method, prediction))
        # The same refiner without the model: what the prior and noise alone give.
        values[f"prior_only_{method}_{base}_crps"] = crps(
            refined(params, jax.random.fold_in(k_refine, i), method, prediction, 0.0))
    if config.eval.tstr_windows:
      synthetic = np.asarray(parallel.to_host(synthesize(params, k_synth)))
      tstr = train_on_synthetic_test_on_real(synthetic, train_windows, scale(tests),
                                             context, horizon)
      values.update(tstr_mae=tstr["tstr_mae"] * std, trtr_mae=tstr["trtr_mae"] * std,
                    tstr_ratio=tstr["tstr_ratio"])
    naive = base_predictions.get("seasonal_naive")
    naive = None if naive is None else naive * std + mean
    return values, {"forecasts": plots.forecast_figure(tests, draws, naive, context, values)}

  def sample(params, key):
    draws = np.asarray(parallel.to_host(forecast(params, key)))
    return {"forecasts": draws.reshape(len(tests), samples_per, length),
            "windows": tests}, {}

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              record=pipeline_record(pipeline),
              batch_size=batch_size)
