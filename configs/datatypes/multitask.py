"""Multi-task generation: a digit image and its label from one shared diffusion space.

  python -m experiments.main --config=configs/datatypes/multitask.py \
      --workdir=workdirs/multitask
  python -m experiments.main --config=configs/datatypes/multitask.py:image_only \
      --workdir=workdirs/multitask_image_only

"Diffusion Models for Multi-Task Generative Modeling" (Chen et al. 2024): the 8x8 digits
(64 pixels in [-1, 1]) and their labels (centred one-hot codes, 10 values) side by side
in one 74-dimensional space (`diffjax.multitask`); one flow-matching MLP (rectified-flow
path) of the joint, conditioned on the observed modalities (each given with probability
data.p_observe in training), generates jointly, label -> image and image -> label.
`:image_only` trains the same model on the images alone (the image-quality baseline).
`:tiny` runs in seconds.
"""
import ml_collections

from configs.common import flow_matching_mlp, parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("image_only",))
  config = engine_config()
  config.experiment = "multitask"
  image_only = "image_only" in variants
  config.data = ml_collections.ConfigDict(dict(
      modalities="image" if image_only else "image,label", p_observe=0.3, label_scale=1.0))
  flow_matching_mlp(config, width=512)
  config.model.cond_dim = 0 if image_only else 76
  config.train.update(batch_size=256, num_steps=6000, steps_per_call=500, log_every=1000,
                      eval_every=6000, checkpoint_every=3000)
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=25))
  config.eval.num_samples = 1000
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2, num_samples=20)
  return config
