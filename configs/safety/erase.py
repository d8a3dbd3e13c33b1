"""The erasing fine-tune of the class-conditional digits (the unlearning baseline).

  python -m experiments.main --config=configs/safety/erase.py \
      --workdir=workdirs/erase_7 --config.base.workdir=workdirs/guided_digits

Class 7 (erase.forget_class) is re-taught onto the other classes' images (override_class
-1; a class id maps it onto that class): a tenth of each batch, the rest the nine kept
classes with their labels (`diffjax.safety.erasure`). Evaluations report forget_share
(goal < 0.05), kept_accuracy (goal >= 0.9) and kept_frechet. `:tiny` fine-tunes a
`configs/guidance/digits.py:tiny` run for 4 steps.
"""
import ml_collections

from configs.common import parse_arg
from configs.safety.base import fine_tune_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = fine_tune_config("erase", tiny)
  config.erase = ml_collections.ConfigDict(dict(forget_class=7, override_class=-1,
                                                fraction=0.1))
  return config
