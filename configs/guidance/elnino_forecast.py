"""TSDiff on the El Niño series (statsmodels): predict, refine and synthesize.

  python -m experiments.main --config=configs/guidance/elnino_forecast.py \
      --workdir=workdirs/elnino_forecast

An unconditional flow-matching MLP on 48-month windows (rectified-flow path); evaluation on
21 windows of 2000-2010 (36 months observed, 12 forecast, 32 samples per window):
  predict     guided at sampling time towards the observed months (squared energy, scale
              sample.guidance.scale): `crps`;
  refine      the seasonal-naive and the linear (ridge) forecasts refined by 20 Langevin or
              most-likely steps on the model's denoising energy at t = 0.8 with the quantile
              prior: `refined_<method>_<base>_crps` against `<base>_crps` (°C);
  synthesize  1,000 generated windows train the linear forecaster, scored on the held-out
              windows against the one trained on the real windows (`tstr_ratio`).
Plots in plots/forecasts_*.png. --config.sample.guidance.energy=quantile uses quantile
self-guidance; `:predict` evaluates only the self-guided forecasts (the earlier
config); `:elbo` refines on the ELBO over t in [0, 0.8) instead of the denoising energy
at t = 0.8 (TSDiff's second energy; evaluate a trained run with
--mode=eval --config=configs/guidance/elnino_forecast.py:elbo). Your own series:
--config.data.name=file --config.data.file=series.csv (one column, one row per step;
--config.data.train_fraction of it trains, the rest is held out). Needs statsmodels for El Niño (pip install "diffjax[timeseries]"). `:tiny` runs in
seconds.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from configs.guidance.base import guidance_section, timeseries_config


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("predict", "elbo"))
  config = timeseries_config()
  config.sample = ml_collections.ConfigDict(dict(solver="ddim", num_steps=100))
  config.sample.guidance = guidance_section(method="tsdiff", scale=0.25, energy="squared")
  if "predict" not in variants:
    config.eval.refine.update(methods=("langevin", "most_likely"),
                              bases=("seasonal_naive", "linear"))
    config.eval.tstr_windows = 1000
  if "elbo" in variants:
    config.eval.refine.update(energy="elbo", times=(0.0, 0.8))
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=32, sample_steps=4)
    config.eval.num_forecast_samples = 4
    config.eval.refine.iterations = 2
    config.eval.tstr_windows = min(config.eval.tstr_windows, 64)
    config.data.stride = 60
  return config
