"""Score Forgetting Distillation: a data-free one-step class-conditional generator that has
forgotten one class ("Score Forgetting Distillation: A Swift, Data-Free Method for Machine
Unlearning in Diffusion Models"; the generator loss of "Score identity Distillation").

  python -m experiments.main --config=configs/distillation/sfd.py:digits \
      --workdir=workdirs/sfd_digits --config.teacher.workdir=workdirs/guided_digits

digits: the class-conditional digits teacher (a trained `configs/guidance/digits.py` run,
teacher.workdir), class 7 forgotten (method.forget_class) and mapped onto a random other
class per sample (method.override_class = -1; a class id fixes it); generator and fake
score start from the teacher's DiT. two_class: the exact two-class mixture oracle, class 0
mapped onto class 1 (networks from scratch). No real image is read during distillation:
the players draw labels and noise only. tiny shrinks either to seconds.
"""
import ml_collections

from configs.common import parse_arg
from configs.distillation.base import base_config, finish
from diffjax.errors import ConfigError

VARIANTS = ("digits", "two_class")


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"configs/distillation/sfd.py takes one of {', '.join(VARIANTS)} "
                      f"(and optionally tiny); got {arg!r}.")
  digits = (variants or ("digits",))[0] == "digits"
  config = base_config()
  config.method = ml_collections.ConfigDict(dict(
      name="sfd", generator="teacher" if digits else "network", generator_time=0.3,
      fake_init="teacher" if digits else "scratch", fake_objective="flow_matching",
      t_min=0.02, t_max=0.98, forget_class=7 if digits else 0,
      override_class=-1 if digits else 1, alpha=1.2, forget_weight=1.0))
  config.optim_fake = ml_collections.ConfigDict(dict(learning_rate=1e-3, b1=0.9))
  if digits:
    config.data = ml_collections.ConfigDict(dict(name="digits"))
    config.teacher.update(kind="run", workdir="workdirs/guided_digits")
    config.model = ml_collections.ConfigDict(dict(
        name="dit", patch_size=2, hidden_dim=96, depth=4, num_heads=4, num_classes=10))
    config.train.update(num_steps=2_000, batch_size=128, eval_every=500,
                        checkpoint_every=500, log_every=100)
    config.optim.update(learning_rate=2e-5, b1=0.0, ema_decay=0.99)
    config.optim_fake.learning_rate = 2e-5
    config.eval.update(num_samples=1000, metrics=())
  else:
    config.data = ml_collections.ConfigDict(dict(name="teacher"))
    config.teacher.update(kind="oracle", mixture="two_class")
    config.model.num_classes = 2
    config.train.update(num_steps=4_000, batch_size=512, eval_every=1_000,
                        checkpoint_every=2_000, log_every=500)
    config.optim.update(learning_rate=1e-4, b1=0.0, ema_decay=0.99)
  finish(config, tiny)
  config.eval.num_steps = (1,)
  return config
