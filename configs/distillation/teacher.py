"""The flow-matching teachers the distillation configs distil: rectified-flow runs on the
moons, the 8 Gaussians and the digits (class-conditional DiT).

  python -m experiments.main --config=configs/distillation/teacher.py:moons \
      --workdir=workdirs/teacher_moons
  python -m experiments.main --config=configs/distillation/teacher.py:eight_gaussians \
      --workdir=workdirs/teacher_eight_gaussians
  python -m experiments.main --config=configs/distillation/teacher.py:digits \
      --workdir=workdirs/teacher_digits

One variant is required; `tiny` shrinks it to seconds (e.g. `:moons,tiny`). The toy teachers
are toy2d runs (`experiments.toy2d`) and the digits teacher an images run
(`configs/images/digits.py`), all on the rectified-flow path x_t = t x1 + (1 - t) x0, a
Gaussian path, so DPM-Solver++ and consistency distillation apply.
"""
from configs.common import parse_arg, shrink_to_tiny
from configs.images import digits
from configs.toy2d.base import base_config
from diffjax.errors import ConfigError

VARIANTS = ("moons", "eight_gaussians", "digits")


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) != 1:
    raise ConfigError(f"configs/distillation/teacher.py takes one of {', '.join(VARIANTS)} "
                      f"(and optionally tiny); got {arg!r}.")
  if variants[0] == "digits":
    config = digits.get_config("tiny" if tiny else None)
    config.path.name = "rectified_flow"
    return config
  config = base_config()
  config.data.target = variants[0]
  config.path.name = "rectified_flow"
  config.train.update(num_steps=20_000, eval_every=5_000, checkpoint_every=5_000)
  config.optim.update(schedule="constant", warmup_steps=0)
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=32, num_samples=64, sample_steps=4)
  return config
