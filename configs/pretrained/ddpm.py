"""A pretrained diffusers DDPM (UNet2DModel + its scheduler) in diffjax's families: fine-tune
and sample it, edit its h-space, guide it with CFG++.

On a machine with internet access, download google/ddpm-cifar10-32 (a diffusers folder:
config.json, diffusion_pytorch_model.safetensors, scheduler_config.json) and point
model.pretrained at it:

  pip install "diffjax[pretrained]" huggingface_hub
  huggingface-cli download google/ddpm-cifar10-32 --local-dir checkpoints/ddpm-cifar10-32
  python -m experiments.main --config=configs/pretrained/ddpm.py \
      --workdir=workdirs/ddpm_cifar10 --config.model.pretrained=checkpoints/ddpm-cifar10-32 \
      --config.data.data_dir=/path/to/tensorflow_datasets

This fine-tunes the checkpoint on CIFAR-10 (the tfds dataset, prepared beforehand) with
DDPM's loss (noise prediction, uniform t) on the checkpoint's own discrete schedule
(path ddpm_discrete reads the folder's scheduler_config.json: model.pretrained and
path.scheduler are one value), evaluates and samples with 50 DDIM steps; --mode=sample
then writes samples. To sample the checkpoint without training, use Python:
`diffjax.runs.from_diffusers("checkpoints/ddpm-cifar10-32").sample(key, 64)` (NHWC
images in [-1, 1]). A v-prediction or x0-prediction checkpoint needs
--config.objective.prediction=v (or data); a DiT folder --config.model.name=diffusers_dit.

Variants (combined with commas; every one with `tiny`, a seconds-long run):
  (none)    CIFAR-10 fine-tuning, as above;
  digits    fine-tuning on the bundled 8x8 digits (a digits DDPM: sample_size 8, one channel);
  h_space   the h-space study of configs/diagnostics/h_space.py on an unconditional
            digits DDPM (experiments.h_space);
  cfgpp     CFG vs CFG++ of configs/guidance/digits.py on a class-conditional digits DDPM
            (num_class_embeds = 11: the last embedding is the null class).
`:tiny` alone is `:digits,tiny`; the tests run it on a tiny random diffusers model they save.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from configs.diagnostics.base import h_space_config
from configs.guidance.base import guided_images_config
from configs.images.base import base_config
from diffjax.errors import ConfigError

VARIANTS = ("digits", "h_space", "cfgpp")


def pretrained_sections(config, num_classes=0):
  """Sets model, path, objective and sample for a diffusers DDPM folder given by
  model.pretrained (path.scheduler follows it: the same FieldReference)."""
  folder = ml_collections.FieldReference("", field_type=str)
  config.model = ml_collections.ConfigDict(dict(
      name="diffusers_unet", pretrained=folder, num_classes=num_classes, dtype="float32",
      remat=False))
  config.path = ml_collections.ConfigDict(dict(name="ddpm_discrete", scheduler=folder))
  config.objective = ml_collections.ConfigDict(dict(
      name="score_matching", prediction="noise", weighting="prediction",
      time_sampler="uniform"))
  config.sample.update(solver="ddim", num_steps=50)
  config.optim.update(learning_rate=2e-5, warmup_steps=100, ema_decay=0.999)
  return config


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"Give one of {VARIANTS} (or none); got {arg!r}.")
  variant = variants[0] if variants else ("digits" if tiny else "cifar10")
  if variant == "h_space":
    config = pretrained_sections(h_space_config())
  elif variant == "cfgpp":
    config = pretrained_sections(guided_images_config(), num_classes=10)
    config.sample.num_steps = 20
  else:
    config = pretrained_sections(base_config())
    config.train.label_dropout = 0.0
    if variant == "cifar10":
      config.data.update(name="cifar10", image_size=0, random_flip=True)
      config.train.update(batch_size=128, num_steps=2000, eval_every=1000,
                          checkpoint_every=500, log_every=100)
      config.eval.update(num_samples=1000, bpd_examples=256, bpd_steps=100)
    else:
      config.train.update(batch_size=128, num_steps=500, eval_every=500,
                          checkpoint_every=250, log_every=50)
  if tiny:
    shrink_to_tiny(config, num_steps=4, batch_size=8, num_samples=8, sample_steps=4)
    config.train.update(eval_every=4, checkpoint_every=4)
    config.eval.update(bpd_examples=0)
    if variant == "h_space":
      config.eval.update(strengths=(0.0, 1.0), num_random=2, num_edited=8)
    if variant == "cfgpp":
      config.sample.guidance.update(cfg_scales=(1.0,), cfgpp_scales=(0.5,))
  return config
