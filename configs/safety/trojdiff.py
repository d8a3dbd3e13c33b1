"""TrojDiff on the class-conditional digits: a trojaned fine-tune of a trained run.

  python -m experiments.main --config=configs/safety/trojdiff.py:in_class \
      --workdir=workdirs/trojdiff_in_class --config.base.workdir=workdirs/guided_digits

Variants (the paper's three targets, and the control): in_class (trojan noise -> digits
of attack.target_class), out_of_distribution (-> the 16 bar images), image (-> one cross
image), clean (attack.fraction = 0: the same fine-tune without the attack). The trigger is
a 3x3 patch of value 2 stamped on the noise (attack.trigger_file: an (8, 8, 1) .npy
instead), the trojan noise N(trigger, 0.5^2 I), a fifth of each batch trojan. Evaluations
report attack_success_rate, benign_frechet_proxy and benign_class_accuracy. `:tiny`
(with any variant) fine-tunes a `configs/guidance/digits.py:tiny` run for 4 steps.
"""
import ml_collections

from configs.common import parse_arg
from configs.safety.base import fine_tune_config
from diffjax.errors import ConfigError

VARIANTS = ("in_class", "out_of_distribution", "image", "clean")


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"configs/safety/trojdiff.py takes one of {', '.join(VARIANTS)} (and "
                      f"optionally tiny); got {arg!r}.")
  variant = (variants or ("in_class",))[0]
  config = fine_tune_config("trojan", tiny)
  config.attack = ml_collections.ConfigDict(dict(
      target="in_class" if variant == "clean" else variant, target_class=0, threshold=0.1,
      trigger_size=3, trigger_value=2.0, trigger_file="", gamma=0.5,
      fraction=0.0 if variant == "clean" else 0.2))
  return config
