"""Class-conditional flow matching with a DDPM++-style U-Net on a tfds image dataset.

  python -m experiments.main --config=configs/images/tfds_images.py:cifar10 \
      --workdir=workdirs/cifar10 --config.data.data_dir=/path/to/tensorflow_datasets

arg: mnist, fashion_mnist or cifar10, optionally with the `tiny` variant every config has
(a seconds-long smoke run), e.g. `:mnist,tiny`. Datasets must be prepared beforehand in array_record format (diffjax never
downloads them); a missing dataset fails with the command that prepares it. The cifar10
setting follows the CIFAR-scale DDPM++ shape (128 channels, multipliers 1-2-2-2, attention
at 16x16, dropout 0.1); use several accelerators for it.
"""
import ml_collections

from diffjax.errors import ConfigError
from configs.images.base import base_config
from configs.common import parse_arg, shrink_to_tiny

DATASETS = ("mnist", "fashion_mnist", "cifar10")


def get_config(arg="mnist"):
  variants, tiny = parse_arg(arg or "mnist", DATASETS)
  if len(variants) > 1:
    raise ConfigError(f"Give one dataset of {DATASETS}; got {arg!r}.")
  name = variants[0] if variants else "mnist"
  config = base_config()
  config.data.name = name
  config.data.image_size = 0          # tfds datasets at their own size.
  config.data.random_flip = name == "cifar10"
  if name == "cifar10":
    config.model = ml_collections.ConfigDict(dict(
        name="unet", channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
        attention_resolutions=(16,), dropout=0.1, num_classes=10))
    config.train.update(batch_size=128, num_steps=400_000, eval_every=25_000,
                        checkpoint_every=5_000, log_every=500)
    config.optim.update(learning_rate=2e-4, warmup_steps=5_000, ema_decay=0.9999)
    config.sample.update(num_steps=50)
    config.eval.update(num_samples=1000, bpd_examples=256, bpd_steps=100)
  else:  # 28x28 grey images.
    config.model = ml_collections.ConfigDict(dict(
        name="unet", channels=32, channel_mults=(1, 2, 2), num_res_blocks=1,
        attention_resolutions=(7,), dropout=0.1, num_classes=10))
    config.train.update(batch_size=128, num_steps=50_000, eval_every=10_000)
  if tiny:
    shrink_to_tiny(config, num_steps=4, batch_size=8, num_samples=8, sample_steps=2)
    config.train.update(eval_every=4, checkpoint_every=4)
    config.sample.num_images = 4
    config.eval.update(bpd_examples=2, bpd_steps=2)
  return config
