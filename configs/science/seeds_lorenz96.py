"""SEEDS on Lorenz-96: forecast-ensemble members generated from 2 seed members.

  python -m experiments.main --config=configs/science/seeds_lorenz96.py \
      --workdir=workdirs/seeds_lorenz96

Ensembles of the 40-variable Lorenz-96 system (F = 8) at lead time 1 from perturbed
analyses (`diffjax.data.lorenz96`): 2,000 training dates of 20 members; an MLP
flow-matching model of one member minus the mean of 2 other members of its date, given
their mean and std (condition dropout 0.1). --config.data.residual=False models the
member itself (then the condition-dropped model is also an unconditional emulator,
`crps_unconditional`). Evaluation on 200 held-out dates:
2 seeds + 18 generated members against 20 true members and the 2 seeds alone:
`crps_<ensemble>`, `spread_skill_<ensemble>`, `crps_ratio_seeds_generated_to_true`,
plots/rank_histograms_*.png. `:tiny` runs in seconds.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "ensembles"
  config.data = ml_collections.ConfigDict(dict(
      dim=40, train_dates=2000, test_dates=200, members=20, num_seeds=2, lead_time=1.0,
      perturbation=0.2, residual=True))
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.objective = ml_collections.ConfigDict(dict(name="flow_matching",
                                                    time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(name="mlp", width=512, depth=3,
                                                activation="silu", cond_dim=80,
                                                time_embedding="sinusoidal", time_dim=32))
  config.train.update(batch_size=256, num_steps=6000, steps_per_call=200, log_every=1000,
                      eval_every=6000, checkpoint_every=2000)
  config.train.label_dropout = 0.1
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=25))
  config.eval.generated = 18
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2)
    config.data.update(dim=8, train_dates=8, test_dates=4, members=5)
    config.model.cond_dim = 16
    config.eval.generated = 3
  return config
