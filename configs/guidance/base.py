"""Guidance families: the guided digits studies (`guided_images`), the noise-aware
classifier (`noisy_classifier`) and forecasting by self-guidance (`timeseries`).
"""
import ml_collections

from configs.common import flow_matching_mlp
from configs.images.base import base_config as images_config
from diffjax.train.defaults import engine_config

def guidance_section(**overrides) -> ml_collections.ConfigDict:
  """config.sample.guidance with every key a method reads (`diffjax.guidance.build`); the
  scale means p_u + w (p_c - p_u): w = 0 unconditional, w = 1 conditional."""
  section = ml_collections.ConfigDict(dict(
      method="none", scale=1.0, interval=(0.0, 1.0), threshold=0.99, step_size=1.0,
      on="state", noise_std=0.1, energy="squared", quantile=0.5, tau1=1.0, ratio=0.5,
      amplitude=0.3, through="denoiser", num_candidates=8, alpha=0.1))
  section.update(overrides)
  return section


def guided_images_config():
  """The digits run of configs/images/digits.py on the rectified-flow path (the linear
  path as a Gaussian path: DDIM, DPM-Solver++ and CFG++ apply), label dropout 0.15."""
  config = images_config()
  config.experiment = "guided_images"
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.train.label_dropout = 0.15
  config.sample = ml_collections.ConfigDict(dict(solver="ddim", num_steps=20, num_images=50))
  config.sample.guidance = guidance_section(
      cfg_scales=(0.0, 1.0, 2.0, 4.0), cfgpp_scales=(0.0, 0.2, 0.4, 0.6),
      classifier_scales=(0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0), softplus_beta=3.0)
  config.eval.study = "cfg_vs_cfgpp"
  config.eval.mask = "right_half"
  config.eval.num_inpainting = 100
  config.eval.inpainting_draws = 1
  config.eval.guide_classifier_seed = 1
  return config


def noisy_classifier_config():
  """A time-conditioned MLP classifier of noisy digits on the rectified-flow path of
  configs/guidance/digits.py; eval.diffusion_workdir names the digits run it guides."""
  config = engine_config()
  config.experiment = "noisy_classifier"
  config.data = ml_collections.ConfigDict(dict(name="digits", image_size=8, data_dir="",
                                                random_flip=False))
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.classifier = ml_collections.ConfigDict(dict(width=256, depth=3, activation="silu",
                                                     time_dim=32))
  config.train.update(batch_size=128, num_steps=4000, steps_per_call=50, log_every=500,
                      eval_every=2000, checkpoint_every=1000)
  config.optim.update(learning_rate=1e-3, warmup_steps=100, ema_decay=0.999)
  config.eval.update(noise_times=(0.25, 0.5, 0.75, 1.0), diffusion_workdir="",
                     guidance_scales=(0.0, 1.0, 2.0, 4.0), num_samples=500)
  return config


def timeseries_config() -> ml_collections.ConfigDict:
  """TSDiff on a univariate series (`experiments.timeseries`): El Niño (data.name=elnino)
  or a user's file (data.name=file, data.file=..., data.train_fraction of it trains);
  eval.refine (TSDiff refine: methods, bases, regularizer, scale, step_size, iterations,
  noise_scale, times, energy) and eval.tstr_windows (TSDiff synthesize; 0 skips it)."""
  config = engine_config()
  config.experiment = "timeseries"
  config.data = ml_collections.ConfigDict(dict(name="elnino", file="", context=36,
                                               horizon=12, stride=6, season=12,
                                               train_fraction=0.8))
  flow_matching_mlp(config, width=256)
  config.train.update(batch_size=128, num_steps=6000, eval_every=3000, log_every=500)
  config.train.label_dropout = 0.0
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.eval.num_forecast_samples = 32
  config.eval.tstr_windows = 0
  config.eval.refine = ml_collections.ConfigDict(dict(
      methods=(), bases=("seasonal_naive",), regularizer="quantile", scale=1.0,
      step_size=0.01, iterations=20, noise_scale=1.0, times=(0.8,), energy="denoising"))
  return config
