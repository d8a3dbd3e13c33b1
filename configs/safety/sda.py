"""SDA on digits-C: test-time adaptation of the digits classifier through the
class-conditional digits model.

  python -m experiments.main --config=configs/safety/sda.py \
      --workdir=workdirs/sda --config.base.workdir=workdirs/guided_digits

The base run's 500 class-conditional samples are re-diffused by DDA's projection (noised
to t = 0.5, 10 DDIM steps of the unconditional model with low-pass structure guidance of
scale 2) and the digits classifier is fine-tuned on them for 300 Adam steps (batch 128,
learning rate 1e-3). Evaluation: accuracy of the source classifier on the corrupted test
digits (source_<corruption><severity>), of the source classifier on their DDA projection
(dda_...) and of the fine-tuned classifier on it (sda_...), for noise, blur, contrast and
elastic at severities 0 (clean), 2 and 4 (eval.corruptions, eval.severities). `:tiny`
runs 4 steps on 20 test images of one corruption.
"""
import ml_collections

from configs.common import parse_arg
from configs.safety.base import BASE_WORKDIR
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "sda"
  config.base = ml_collections.ConfigDict(dict(workdir=BASE_WORKDIR))
  config.dda = ml_collections.ConfigDict(dict(start=0.5, num_steps=10, scale=2.0))
  config.sda = ml_collections.ConfigDict(dict(num_synthetic=500))
  config.train.update(num_steps=300, batch_size=128, steps_per_call=100, log_every=100,
                      eval_every=300, checkpoint_every=300)
  config.optim.update(learning_rate=1e-3, warmup_steps=0, ema_decay=0.0)
  config.eval.update(use_ema=False, corruptions=("noise", "blur", "contrast", "elastic"),
                     severities=(0, 2, 4), num_test=300)
  if tiny:
    config.train.update(num_steps=4, steps_per_call=2, log_every=2, eval_every=4,
                        checkpoint_every=4, batch_size=8)
    config.dda.num_steps = 2
    config.sda.num_synthetic = 10
    config.eval.update(corruptions=("blur",), severities=(0, 3), num_test=20)
  return config
