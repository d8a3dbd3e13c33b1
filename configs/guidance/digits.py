"""Class-conditional digits for guidance: CFG and CFG++ side by side.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits

Trains the class-conditional DiT of `configs/images/digits.py` by flow matching on the
rectified-flow path (x_t = t x1 + (1 - t) eps, the linear path as a Gaussian path, so DDIM
and DPM-Solver++ apply) with label dropout 0.15 (the null class is the unconditional
model); about 20 minutes on a shared 2-core CPU. Evaluation samples with 20 DDIM steps
and, for CFG at each w of sample.guidance.cfg_scales and CFG++ at each lambda of
sample.guidance.cfgpp_scales (convention p_u + w (p_c - p_u)), reports the digits
classifier's accuracy (`accuracy_cfg_w2`, `accuracy_cfgpp_l0.4`, ...) and writes one grid
per method and scale to plots/. Any trained conditional run can be resampled with another
method: --mode=sample --config.sample.guidance.method=cfgpp
--config.sample.guidance.scale=0.6 (or adaptive, svdd with a reward, ...). The inpainting
study evaluates the same run: configs/guidance/digits_inpainting.py. `:tiny` runs in
seconds.
"""
from configs.guidance.base import guided_images_config
from configs.common import parse_arg, shrink_to_tiny


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = guided_images_config()
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=16, num_samples=20, sample_steps=4)
    config.train.update(eval_every=20, checkpoint_every=20)
    config.eval.update(bpd_examples=0)
    config.sample.guidance.update(cfg_scales=(1.0, 3.0), cfgpp_scales=(0.5,))
  return config
