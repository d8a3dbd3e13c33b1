"""Class-conditional flow matching on scikit-learn's 8x8 digits with a small DiT.

  python -m experiments.main --config=configs/images/digits.py --workdir=workdirs/digits

Trains in a few minutes on a 2-core CPU; evaluations report the proxy Fréchet distance in
the features of diffjax's own digits classifier, that classifier's accuracy on the
class-conditional samples, and bits/dim on held-out digits. `:tiny` runs in seconds;
`:unet` swaps in a small U-Net (about 3x slower per step on a CPU).
"""
import ml_collections

from experiments.images import base_config


def get_config(arg=None):
  config = base_config()
  if arg == "tiny":
    config.model.update(hidden_dim=16, depth=1, num_heads=2)
    config.train.update(batch_size=16, num_steps=20, steps_per_call=10, log_every=10,
                        eval_every=20, checkpoint_every=20)
    config.sample.update(num_steps=4, num_images=10)
    config.eval.update(num_samples=40, bpd_examples=4, bpd_steps=4)
  elif arg == "unet":
    config.model = ml_collections.ConfigDict(dict(
        name="unet", channels=32, channel_mults=(1, 2), num_res_blocks=1,
        attention_resolutions=(4,), dropout=0.0, num_classes=10))
  elif arg is not None:
    raise ValueError(f"Unknown config argument {arg!r}; valid: tiny, unet (or none).")
  return config
