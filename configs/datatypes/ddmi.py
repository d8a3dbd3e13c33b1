"""DDMI: the digits as functions on [0, 1]^2, sampled at 8x8 and 16x16 from one model.

  python -m experiments.main --config=configs/datatypes/ddmi.py --workdir=workdirs/ddmi

"DDMI: Domain-Agnostic Latent Diffusion Models for Synthesizing High-Quality Implicit
Neural Representations" (Park et al. 2024): a VAE maps an 8x8 digit to hierarchical
positional embeddings (grids 2x2x8 and 4x4x4, 96 values) and decodes the function at any
point of [0, 1]^2 (`diffjax.implicit`), phase "autoencoder" (1,500 steps); then a
flow-matching MLP (rectified-flow path) of the standardised embeddings, phase "diffusion"
(3,000 steps: half of what configs/datatypes/multitask.py:image_only trains its
pixel-space model for, the same model and batch otherwise). Sampled functions are rendered at eval.resolutions = 8, 16 and scored by the
digits' proxy Fréchet distance; ddmi.coordinates_file (.npy (P, 2) points of
[0, 1]^2) also evaluates the samples there (--mode=sample). `:tiny` runs in seconds.
"""
import ml_collections

from configs.common import flow_matching_mlp, parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "ddmi"
  config.ddmi = ml_collections.ConfigDict(dict(
      resolutions=(2, 4), channels=(8, 4), autoencoder_steps=1500, diffusion_steps=3000,
      beta=1e-4, random_points=16, decoder_width=64, coordinates_file=""))
  flow_matching_mlp(config, width=512)
  config.train.update(batch_size=256, num_steps=4500, steps_per_call=250, log_every=500,
                      eval_every=4500, checkpoint_every=1500)
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=25))
  config.eval.update(num_samples=1000, resolutions=(8, 16))
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2, num_samples=20)
    config.ddmi.update(autoencoder_steps=5, diffusion_steps=5, random_points=8)
  return config
