"""Diffusion with Forward Models (Tewari et al., NeurIPS 2023) on the digits: a model of
full digits trained only on half-masked observations, beside one trained on complete data.

  python -m experiments.main --config=configs/adaptation/dfm_digits.py --workdir=workdirs/dfm
  python -m experiments.main --config=configs/adaptation/dfm_digits.py \
      --workdir=workdirs/dfm_complete --config.dfm.forward_model=complete

`experiments.dfm`: a time-conditioned MLP denoiser (width 512, depth 3) trained 4,000
steps by DFM's loss on random half-mask observations (rectified-flow path; the context
empty half the time); evaluation samples 500 full digits with an empty context (20 DDIM
steps on a random half as the target observation) and reports their proxy Fréchet distance
to the test digits and that of the observations themselves. `:tiny` runs in seconds.
"""
import ml_collections

from configs.common import parse_arg
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "dfm"
  config.data = ml_collections.ConfigDict(dict(name="digits", image_size=8, data_dir=""))
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.dfm = ml_collections.ConfigDict(dict(forward_model="half_masks",
                                              context_dropout=0.5, width=512, depth=3))
  config.train.update(batch_size=128, num_steps=4000, steps_per_call=100, log_every=1000,
                      eval_every=4000, checkpoint_every=4000)
  config.optim.update(learning_rate=1e-3, warmup_steps=100)
  config.eval.update(num_samples=500, num_steps=20)
  if tiny:
    config.train.update(num_steps=4, batch_size=16, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.optim.warmup_steps = 1
    config.dfm.update(width=16, depth=1)
    config.eval.update(num_samples=20, num_steps=2)
  return config
