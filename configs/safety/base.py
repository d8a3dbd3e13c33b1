"""The safety fine-tunes (`experiments.safety`): the network, path and sampler of the
class-conditional digits run of `configs/guidance/digits.py` (base.workdir), which they
fine-tune; `:tiny` fine-tunes a `configs/guidance/digits.py:tiny` run for a few steps.
"""
import ml_collections

from configs.common import shrink_to_tiny
from configs.guidance.base import guided_images_config

BASE_WORKDIR = "workdirs/guided_digits"


def fine_tune_config(experiment, tiny):
  """A fine-tune of base.workdir: 400 steps of batch 128 at learning rate 5e-4."""
  config = guided_images_config()
  config.experiment = experiment
  config.base = ml_collections.ConfigDict(dict(workdir=BASE_WORKDIR))
  config.train.update(num_steps=400, batch_size=128, steps_per_call=50, log_every=100,
                      eval_every=400, checkpoint_every=200)
  config.optim.update(learning_rate=5e-4, warmup_steps=20, ema_decay=0.99)
  config.eval.num_samples = 500
  if tiny:
    shrink_to_tiny(config, num_steps=4, batch_size=16, num_samples=20, sample_steps=4)
  return config
