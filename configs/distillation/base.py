"""The distillation family (`experiments.distillation`): a student trained by a method of
`diffjax.distillation.DISTILLATION_METHODS` from a teacher and/or the data.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from diffjax.errors import ConfigError
from diffjax.train.defaults import engine_config

# The data a method config runs on (its argument): the moons or the 8 Gaussians with a
# trained flow-matching teacher, the 8 Gaussians with the exact oracle as teacher (and its
# exact target as data), or the digits.
DATA_VARIANTS = ("moons", "eight_gaussians", "oracle", "digits")

# Teacher runs the configs distil by default (`configs/distillation/teacher.py`).
TEACHER_WORKDIRS = {"moons": "workdirs/teacher_moons",
                    "eight_gaussians": "workdirs/teacher_eight_gaussians",
                    "digits": "workdirs/teacher_digits"}


def base_config() -> ml_collections.ConfigDict:
  """A student on the moons (rectified-flow path, MLP), evaluated at 1, 2 and 4 steps."""
  config = engine_config()
  config.experiment = "distillation"
  config.data = ml_collections.ConfigDict(dict(name="toy2d", target="moons", dim=2))
  config.teacher = ml_collections.ConfigDict(dict(kind="none", mixture="", workdir="",
                                                  use_ema=True))
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.method = ml_collections.ConfigDict(dict(name=""))
  config.model = ml_collections.ConfigDict(dict(
      name="mlp", width=128, depth=3, activation="silu", time_embedding="sinusoidal",
      time_dim=32, num_classes=0))
  config.train.update(num_steps=20_000, batch_size=256, eval_every=5_000,
                      checkpoint_every=5_000)
  config.optim.update(learning_rate=1e-3, schedule="constant", warmup_steps=0,
                      ema_decay=0.999)
  config.sample = ml_collections.ConfigDict(dict(num_steps=1))
  config.eval.update(num_steps=(1, 2, 4), num_samples=2000, reference_seed=12345,
                     metrics=("w2", "energy_distance"))
  return config


def use_data(config, data, needs_teacher=True):
  """Points the config at `data` (`DATA_VARIANTS`): the data, the student's network and,
  for a method with a teacher, the teacher (a run of `teacher.py`, or the oracle)."""
  if data == "oracle":
    config.data = ml_collections.ConfigDict(dict(name="teacher"))
    config.teacher.update(kind="oracle", mixture="eight_gaussians")
    return config
  if data == "digits":
    config.data = ml_collections.ConfigDict(dict(name="digits"))
    config.model = ml_collections.ConfigDict(dict(
        name="dit", patch_size=2, hidden_dim=96, depth=4, num_heads=4, num_classes=10))
    config.train.batch_size = 128
    config.eval.update(num_samples=500, metrics=())
  else:
    config.data.update(name="toy2d", target=data, dim=2)
  if needs_teacher:
    config.teacher.update(kind="run", workdir=TEACHER_WORKDIRS[data])
  return config


def method_config(arg, name, needs_teacher, options, per_data=None):
  """The config of method `name` with `options` (config.method) on the data its argument
  names (`DATA_VARIANTS`, default moons; "tiny" shrinks it), with per_data[data] options
  over `options`."""
  variants, tiny = parse_arg(arg, DATA_VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"Give one data variant of {', '.join(DATA_VARIANTS)}; got {arg!r}.")
  data = variants[0] if variants else "moons"
  config = use_data(base_config(), data, needs_teacher)
  config.method = ml_collections.ConfigDict(
      dict(name=name, **dict(options, **(per_data or {}).get(data, {}))))
  return finish(config, tiny)


def finish(config, tiny):
  """The tiny variant: 20 steps in two chunks, a small model, 64 samples."""
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=32, num_samples=64)
    config.eval.num_steps = (1, 2)
  return config
