"""The distillation family (`experiments.distillation`): a student trained by a method of
`diffjax.distillation.DISTILLATION_METHODS` from a teacher and/or the data.
"""
import ml_collections

from configs.common import shrink_to_tiny
from diffjax.train.defaults import engine_config

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
      time_dim=32))
  config.train.update(num_steps=20_000, batch_size=256, eval_every=5_000,
                      checkpoint_every=5_000)
  config.optim.update(learning_rate=1e-3, schedule="constant", warmup_steps=0,
                      ema_decay=0.999)
  config.sample = ml_collections.ConfigDict(dict(num_steps=1))
  config.eval.update(num_steps=(1, 2, 4), num_samples=2000, reference_seed=12345,
                     metrics=("w2", "energy_distance"))
  return config


def use_data(config, data):
  """Points the config at `data` ("moons", "eight_gaussians" or "digits"): the data, the
  student's network and, for a method with a teacher, the teacher run of `teacher.py`."""
  if data == "digits":
    config.data = ml_collections.ConfigDict(dict(name="digits"))
    config.model = ml_collections.ConfigDict(dict(
        name="dit", patch_size=2, hidden_dim=96, depth=4, num_heads=4, num_classes=10))
    config.train.batch_size = 128
    config.eval.update(num_samples=500, metrics=())
  else:
    config.data.update(name="toy2d", target=data, dim=2)
  config.teacher.workdir = TEACHER_WORKDIRS[data]
  return config


def finish(config, tiny):
  """The tiny variant: 20 steps in two chunks, a small model, 64 samples."""
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=32, num_samples=64)
    config.eval.num_steps = (1, 2)
  return config
