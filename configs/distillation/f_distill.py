"""f-distill: a one-step generator distilled by an f-divergence's distribution matching.

  python -m experiments.main --config=configs/distillation/f_distill.py:imbalanced \
      --workdir=workdirs/fdistill_js --config.method.divergence=jensen_shannon

Three players per step (fake score, discriminator, generator; "One-step Diffusion Models
with f-Divergence Distribution Matching"); method.divergence is one of
`diffjax.distillation.DIVERGENCES` (reverse_kl, forward_kl, jensen_shannon,
squared_hellinger). Variants (one, optionally with tiny): imbalanced (the exact oracle of
the imbalanced 8-Gaussian ring), moons, eight_gaussians, digits (trained teachers of
`teacher.py`); the README's table runs imbalanced with each divergence and 3 seeds.
"""
from configs.common import parse_arg
from configs.distillation.matching import VARIANTS, matching_config
from diffjax.errors import ConfigError


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"configs/distillation/f_distill.py takes one of {', '.join(VARIANTS)} "
                      f"(and optionally tiny); got {arg!r}.")
  return matching_config(variants[0] if variants else "imbalanced", tiny, "f_distill")
