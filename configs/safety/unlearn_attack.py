"""UnlearnDiffAtk against an unlearned class-conditional digits model.

  python -m experiments.main --config=configs/safety/unlearn_attack.py:run \
      --workdir=workdirs/attack_erased --config.subject.workdir=workdirs/erase_7

Variants (subject.kind): run (a trained run: the erased fine-tune of
configs/safety/erase.py, or the original model as the control), negative_guidance (a run
sampled with negative guidance away from class 7: scale 1, negative_scale 2) and sfd (an
SFD student, configs/distillation/sfd.py:digits). Class 7's embedding (attack.forget_class)
is trained for 100 Adam steps (learning rate 0.05) on the subject's denoising loss of 32
test images of the class, the network frozen. Evaluations report
forget_share_before_attack and forget_share_after_attack (eval.num_samples samples of
the class). `:tiny` runs 4 steps.
"""
import ml_collections

from configs.common import parse_arg
from diffjax.errors import ConfigError
from diffjax.train.defaults import engine_config

VARIANTS = ("run", "negative_guidance", "sfd")


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"configs/safety/unlearn_attack.py takes one of {', '.join(VARIANTS)} "
                      f"(and optionally tiny); got {arg!r}.")
  config = engine_config()
  config.experiment = "unlearn_attack"
  config.subject = ml_collections.ConfigDict(dict(
      kind=(variants or ("run",))[0], workdir="workdirs/erase_7", scale=1.0,
      negative_scale=2.0))
  config.attack = ml_collections.ConfigDict(dict(forget_class=7, num_targets=32, num_pairs=2,
                                                 num_lambda=4))
  config.train.update(num_steps=100, batch_size=32, steps_per_call=50, log_every=25,
                      eval_every=100, checkpoint_every=100)
  config.optim.update(learning_rate=0.05, warmup_steps=0, ema_decay=0.0)
  config.eval.update(num_samples=200, use_ema=False)
  if tiny:
    config.train.update(num_steps=4, steps_per_call=2, log_every=2, eval_every=4,
                        checkpoint_every=4)
    config.attack.update(num_targets=4, num_pairs=1, num_lambda=2)
    config.eval.num_samples = 10
  return config
