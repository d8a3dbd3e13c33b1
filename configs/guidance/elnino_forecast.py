"""Forecasting the El Niño series (statsmodels) with TSDiff self-guidance.

  python -m experiments.main --config=configs/guidance/elnino_forecast.py \
      --workdir=workdirs/elnino_forecast

An unconditional flow-matching MLP on 48-month windows (rectified-flow path), guided at
sampling time towards the 36 observed months (squared energy, scale
sample.guidance.scale) to forecast the next 12 with 32 samples per window, for 21 windows
of 2000-2010. Reports `crps` against `seasonal_naive_crps` (°C) and plots/forecasts_*.png.
--config.sample.guidance.energy=quantile --config.sample.guidance.quantile=0.5 uses
quantile self-guidance. Needs statsmodels (pip install "diffjax[timeseries]"). `:tiny`
runs in seconds.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from configs.guidance.base import guidance_section, timeseries_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = timeseries_config()
  config.sample = ml_collections.ConfigDict(dict(solver="ddim", num_steps=100))
  config.sample.guidance = guidance_section(method="tsdiff", scale=0.25, energy="squared")
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=32, sample_steps=4)
    config.eval.num_forecast_samples = 4
    config.data.stride = 60
  return config
