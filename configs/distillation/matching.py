"""Shared settings of the distribution-matching configs (f_distill, dmd, disback, sfd):
the data variants, the method's options and the players' optimizer sections.

Variants: "imbalanced" distils the exact oracle of the imbalanced 8-Gaussian ring
(weights 0.4 down to 0.02, `diffjax.distillation.teachers`) and scores students against
exact draws of it; "moons" and "eight_gaussians" distil the trained flow-matching teachers
of `teacher.py`; "digits" distils the class-conditional digits teacher (generator and fake
score start from the teacher's DiT, as in DMD and SiD).
"""
import ml_collections

from configs.distillation.base import base_config, finish, use_data

VARIANTS = ("imbalanced", "moons", "eight_gaussians", "digits")


def feature_layer(model) -> str:
  """The fake network's last hidden layer (the discriminator's features)."""
  return f"DiTBlock_{model.depth - 1}" if model.name == "dit" else f"Dense_{model.depth - 1}"


def matching_config(variant: str, tiny: bool, method: str, discriminator: bool = True):
  """A distribution-matching config of `method` on `variant` (module docstring)."""
  config = base_config()
  if variant == "imbalanced":
    config.data = ml_collections.ConfigDict(dict(name="teacher"))
    config.teacher.update(kind="oracle", mixture="imbalanced_eight_gaussians")
  else:
    use_data(config, variant, needs_teacher=True)
  digits = variant == "digits"
  config.method = ml_collections.ConfigDict(dict(
      name=method, generator="teacher" if digits else "network", generator_time=0.3,
      fake_init="teacher" if digits else "scratch", fake_objective="flow_matching",
      t_min=0.02, t_max=0.98, time_weight="dmd"))
  if discriminator:
    config.method.update(divergence="reverse_kl", feature_layer="", disc_width=128,
                         disc_depth=2, max_log_ratio=10.0, ratio_bins=0,
                         train_features=False, teacher_samples=20_000, teacher_steps=50)
  config.train.update(num_steps=8_000, batch_size=512, eval_every=1_000,
                      checkpoint_every=2_000, log_every=500)
  config.optim.update(learning_rate=1e-4, b1=0.0, ema_decay=0.99)
  config.optim_fake = ml_collections.ConfigDict(dict(learning_rate=1e-3, b1=0.9))
  config.optim_discriminator = ml_collections.ConfigDict(dict(learning_rate=1e-3, b1=0.9))
  config.eval.update(num_steps=(1,), num_samples=4000)
  if digits:
    config.train.update(num_steps=3_000, batch_size=128, eval_every=1_000,
                        checkpoint_every=1_000)
    config.optim.learning_rate = 2e-5
    config.optim_fake.learning_rate = 2e-5
    if discriminator:
      config.method.teacher_samples = 2_000
    config.eval.num_samples = 1_000
  finish(config, tiny)
  config.eval.num_steps = (1,)
  if tiny and discriminator:
    config.method.update(teacher_samples=64, teacher_steps=4)
  if discriminator:
    config.method.feature_layer = feature_layer(config.model)
  return config
