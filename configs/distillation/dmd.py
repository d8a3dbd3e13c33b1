"""DMD / variational score distillation: reverse KL with two players (fake score,
generator) and no discriminator ("One-step Diffusion with Distribution Matching
Distillation"); f_distill with reverse_kl computes the same generator gradient but also
trains a discriminator.

  python -m experiments.main --config=configs/distillation/dmd.py:imbalanced \
      --workdir=workdirs/dmd

Variants as `f_distill.py`: imbalanced, moons, eight_gaussians, digits; tiny.
"""
from configs.common import parse_arg
from configs.distillation.matching import VARIANTS, matching_config
from diffjax.errors import ConfigError


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"configs/distillation/dmd.py takes one of {', '.join(VARIANTS)} "
                      f"(and optionally tiny); got {arg!r}.")
  return matching_config(variants[0] if variants else "imbalanced", tiny, "dmd",
                         discriminator=False)
