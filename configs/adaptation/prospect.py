"""ProSpect on the digits (family `prospect`, `experiments.prospect`): a prompt spectrum of
4 time intervals learned for two concepts, a thick 3 and an original 8 (5 images each),
with the class-conditional digits run frozen; evaluation swaps one interval's embedding
from the 8 into the 3 and measures which attributes move.

  python -m experiments.main --config=configs/adaptation/prospect.py \
      --workdir=workdirs/prospect --config.source.workdir=workdirs/guided_digits

`tiny` shrinks the run to seconds. method.intervals must tile [0, 1].
"""
import ml_collections

from configs.adaptation.common import adaptation_config
from configs.common import parse_arg


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = adaptation_config("prospect", num_steps=600, batch_size=16, eval_every=600,
                              learning_rate=1e-2, num_samples=200, tiny=tiny)
  config.optim.grad_clip = 0.0
  config.concepts = ml_collections.ConfigDict(dict(
      pairs=(("thick", 3), ("original", 8)), num_images=5, seed=0))
  config.method = ml_collections.ConfigDict(dict(
      intervals=((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)), init_scale=0.01))
  return config
