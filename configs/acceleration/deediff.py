"""DeeDiff on the class-conditional digits DiT: exits after each block with uncertainty
estimates, trained on the frozen network, and early-exit sampling.

  python -m experiments.main --config=configs/acceleration/deediff.py \
      --workdir=workdirs/deediff_digits --config.source.workdir=workdirs/guided_digits

Trains the exits and uncertainty modules of `diffjax.acceleration.deediff` (L_simple +
L_u + L_UAL; method.train_backbone=True also fine-tunes the DiT) on the digits, then
samples 20 DDIM steps class-conditionally at each exit threshold of eval.thresholds (0:
the full network) and reports per threshold the digits accuracy, the proxy Fréchet
distance, the blocks run per sample and step (`layers_t<thr>`), the blocks the batch ran
per step (`loop_layers_t<thr>`) and the wall time of one batch. `:tiny` runs in seconds.
"""
from configs.acceleration.base import acceleration_config
from configs.common import parse_arg


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = acceleration_config(tiny, dict(name="deediff", train_backbone=False))
  config.eval.thresholds = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5)
  config.sample.threshold = 0.4
  return config
