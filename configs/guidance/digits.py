"""Class-conditional digits for guidance: CFG and CFG++ side by side.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits

Trains the class-conditional DiT of `configs/images/digits.py` by flow matching on the
rectified-flow path (x_t = t x1 + (1 - t) eps, the linear path as a Gaussian path, so DDIM
and DPM-Solver++ apply) with label dropout 0.15 (the null class is the unconditional
model). Evaluation samples with DDIM and, for each method in sample.guidance.sweep_methods
and each scale in sample.guidance.sweep_scales, reports the digits classifier's accuracy
and writes one grid per method and scale. Any trained conditional run can be resampled
with another method: --mode=sample --config.sample.guidance.method=cfgpp
--config.sample.guidance.scale=0.6. `:tiny` runs in seconds.
"""
from experiments.guidance import guided_images_config
from experiments.pipeline import parse_arg, shrink_to_tiny


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = guided_images_config()
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=16, num_samples=20, sample_steps=4)
    config.train.update(eval_every=20, checkpoint_every=20)
    config.eval.update(bpd_examples=0)
    config.sample.guidance.sweep_scales = (1.0, 3.0)
  return config
