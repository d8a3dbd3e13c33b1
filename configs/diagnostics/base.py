"""Diagnostics families: hallucination, intrinsic dimension and h-space studies.
"""
import math

import ml_collections

from configs.images.base import base_config as images_config
from diffjax.data import grid_means
from diffjax.train.defaults import engine_config

def mlp_study_config(experiment, width, num_steps) -> ml_collections.ConfigDict:
  """Engine defaults with a 3-layer MLP of `width`, batch 512, evaluated half-way and at
  the end."""
  config = engine_config()
  config.experiment = experiment
  config.model = ml_collections.ConfigDict(dict(
      name="mlp", width=width, depth=3, activation="silu", time_embedding="sinusoidal",
      time_dim=32))
  config.train.update(num_steps=num_steps, batch_size=512, eval_every=num_steps // 2,
                      checkpoint_every=num_steps // 4, log_every=1_000)
  return config


def hallucination_config(case="1d") -> ml_collections.ConfigDict:
  """The paper's 1D (means 1, 2, 3) or 2D (5 x 5 grid) mixture, a VP diffusion with noise
  prediction (DDPM's loss) and an MLP; ancestral (DDPM) sampling.

  2D follows the paper's code (locuslab/diffusion-model-hallucination, gaussian_experiments,
  dataset gaussian25 with the filter of train_toy_filter.py): modes at 2 (i, j), i, j in
  -2..2, std 0.05, the data divided by their std sqrt(8 + 0.05^2) (so spacing 0.707 and
  mode std 0.0177); DDPM with T = 1000 linear betas 0.001..0.2, i.e. the VP path with
  beta_min = 1, beta_max = 200 in s = step / T, trained on s in [0.001, 1] (their 1,000
  levels; t <= 0.999) and sampled by 1,000 ancestral steps from s = 1 to s = 0 (s_min = 0),
  whose last step returns the data prediction at s = 0.001 as theirs does; the detector
  reads the last 10 steps (their start_timestep_var). Their network is a 3-block residual
  MLP of width 128 (about 170k parameters) with a 128-dimensional time embedding: here a
  plain MLP of width 256 and depth 3 (about 140k) with the same embedding width. They
  train 100,000 steps of batch 10,000 (1e9 examples) at a constant lr 1e-3; this CPU
  budget trains 40,000 steps of batch 2,048 (8e7; the engine's cosine schedule and EMA)
  and draws the training times logit-normally (t = sigmoid(2 + 2 n)) instead of
  uniformly: under their schedule s > 0.3 is pure noise (alpha < 0.01), where 70% of
  uniform draws land, while s < 0.1, where the modes are resolved, gets 10% of them and
  46% of these. The loss's minimiser (the denoiser) is the same; only the budget moves.
  After 10,000 steps the in-support samples match the mixture (w2_in_support within the
  floor's spread; the eval reports both).
  """
  config = mlp_study_config("hallucination", width=128, num_steps=20_000)
  config.data = ml_collections.ConfigDict(dict(means=[[1.0], [2.0], [3.0]], std=0.05))
  config.path = ml_collections.ConfigDict(dict(name="vp", beta_min=0.1, beta_max=20.0))
  config.objective = ml_collections.ConfigDict(dict(
      name="score_matching", prediction="noise", weighting="prediction",
      time_sampler="uniform"))
  config.sample = ml_collections.ConfigDict(dict(solver="ancestral", num_steps=250))
  # The 1D model hallucinates rarely (~0.1%): 100,000 samples give ~100 to fit and test on.
  config.eval.update(num_samples=100_000, support_radius=6.0, window=12)
  if case == "2d":
    scale = math.sqrt(8 + 0.05 ** 2)
    config.data.update(means=grid_means(5, spacing=2 / scale), std=0.05 / scale)
    config.path.update(beta_min=1.0, beta_max=200.0, s_min=0.0)
    config.objective.update(time_sampler="logit_normal", mean=2.0, std=2.0)
    config.model.update(width=256, time_dim=128)
    config.train.update(num_steps=40_000, batch_size=2048, eval_every=20_000,
                        checkpoint_every=5_000, log_every=2_000)
    config.sample.num_steps = 1000
    # The detector also over other windows: removed_window<n> / kept_window<n>.
    # The model hallucinates rarely (~0.3%): 50,000 samples give ~150 to fit and test on.
    config.eval.update(num_samples=50_000, window=10, windows=(3, 5, 20, 50, 100))
  return config


def intrinsic_dimension_config(name="circle") -> ml_collections.ConfigDict:
  """An EDM-preconditioned MLP denoiser (the EDM path and loss, whose log-normal noise
  levels cover the small noise the study reads) on `name`'s data."""
  config = mlp_study_config("intrinsic_dimension", width=256, num_steps=10_000)
  config.data = ml_collections.ConfigDict(dict(name=name))
  config.path = ml_collections.ConfigDict(dict(name="edm"))
  config.objective = ml_collections.ConfigDict(dict(name="edm"))
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=20))
  config.eval.update(num_samples=2, num_points=200, noise_levels=(0.02, 0.05, 0.1, 0.2),
                     threshold=0.5)
  return config


def h_space_config():
  """An unconditional small U-Net (bottleneck 4 x 4 x 16) on the digits, flow matching on
  the rectified-flow path (a Gaussian path, so DDIM inverts and samples it)."""
  config = images_config()
  config.experiment = "h_space"
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.model = ml_collections.ConfigDict(dict(
      name="unet", channels=8, channel_mults=(1, 2), num_res_blocks=1,
      attention_resolutions=(), dropout=0.0, num_classes=0))
  config.train.label_dropout = 0.0
  config.train.update(num_steps=1500, batch_size=32, steps_per_call=50, log_every=100,
                      eval_every=1500, checkpoint_every=300)
  config.sample = ml_collections.ConfigDict(dict(solver="ddim", num_steps=20,
                                                 num_images=50))
  config.eval.update(num_samples=100, bpd_examples=0, source_class=1, target_class=7,
                     edit_time=0.5, edit_until=1.0, strengths=(0.0, 0.5, 1.0, 1.5, 2.0),
                     num_random=5, num_edited=30, svm_c=1.0, search_critical_time=False,
                     critical_tolerance=0.0)
  return config
