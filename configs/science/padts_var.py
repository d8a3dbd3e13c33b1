"""PaD-TS on regime-switching VAR series: the population term against its absence.

  python -m experiments.main --config=configs/science/padts_var.py \
      --workdir=workdirs/padts_var
  python -m experiments.main --config=configs/science/padts_var.py:plain \
      --workdir=workdirs/padts_var_plain

4-channel series of 24 steps from a VAR(1) whose innovations' correlation switches between
co-moving, alternating and independent regimes (`diffjax.data.correlated_series`): 4,000
training series; an MLP flow-matching model of whole series (rectified-flow path) trained
with the population aware loss (population.weight = 1, one time t ~ U[0.2, 1) per batch;
`:plain` sets the weight to 0). Reports `correlation_shift` (PaD-TS's cross-correlation
distribution shift) and `value_shift` on 1,000 generated against 1,000 held-out series,
and their floors (1,000 real training series). `:tiny` runs in seconds.
"""
import ml_collections

from configs.common import flow_matching_mlp, parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("plain",))
  config = engine_config()
  config.experiment = "population"
  config.data = ml_collections.ConfigDict(dict(length=24, channels=4, num_series=4000,
                                               test_series=1000, rho=0.8))
  config.population = ml_collections.ConfigDict(dict(
      weight=0.0 if "plain" in variants else 1.0, min_time=0.2))
  flow_matching_mlp(config, width=512)
  config.train.update(batch_size=256, num_steps=6000, steps_per_call=200, log_every=1000,
                      eval_every=6000, checkpoint_every=2000)
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=25))
  config.eval.num_samples = 1000
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2, num_samples=32)
    config.data.update(length=8, num_series=64, test_series=32)
  return config
