"""Class-conditional flow matching on scikit-learn's 8x8 digits with a small DiT.

  python -m experiments.main --config=configs/images/digits.py --workdir=workdirs/digits

About 12 minutes on a 2-core CPU (3,000 steps); evaluations report the proxy Fréchet
distance in the features of diffjax's own digits classifier, that classifier's accuracy on
the class-conditional samples, and bits/dim on held-out digits. Variants (combine with
commas): `unet` swaps in a small U-Net (about 3x slower per step on a CPU); `tiny` runs in
seconds, e.g. `configs/images/digits.py:tiny` or `:unet,tiny`.
"""
import ml_collections

from configs.images.base import base_config
from configs.common import parse_arg, shrink_to_tiny


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("unet",))
  config = base_config()
  if "unet" in variants:
    config.model = ml_collections.ConfigDict(dict(
        name="unet", channels=32, channel_mults=(1, 2), num_res_blocks=1,
        attention_resolutions=(4,), dropout=0.0, num_classes=10))
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=16, num_samples=40, sample_steps=4)
    config.train.update(eval_every=20, checkpoint_every=20)
    config.eval.update(bpd_examples=4, bpd_steps=4)
  return config
