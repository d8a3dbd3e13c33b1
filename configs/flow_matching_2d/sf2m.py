"""SF2M: SB-CFM's pairs and path with a second network for the score, sampled by the SDE
dX = (v + eps s) dt + sqrt(2 eps) dW with eps = sigma^2 / 2 ("Simulation-free Schrodinger
bridges via score and flow matching", Tong et al.; score loss weighted by gamma^2 as their
lambda(t) = 2 sigma_t / sigma^2 weighting).

  python -m experiments.main --config=configs/flow_matching_2d/sf2m.py --workdir=/tmp/sf2m
"""
import ml_collections

from configs.flow_matching_2d.common import SB_SIGMA, finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  config.coupling.update(name="sinkhorn_ot", epsilon=2 * SB_SIGMA ** 2)
  config.path.update(name="linear", gamma="sqrt", gamma_scale=SB_SIGMA)
  config.objective = ml_collections.ConfigDict(dict(
      name="interpolant", heads=("velocity", "score"), score_weighting="gamma2",
      antithetic=True, time_sampler="uniform"))
  model = config.model.to_dict()
  model.pop("name")
  config.model = ml_collections.ConfigDict(dict(name="stacked_fields", num_fields=2,
                                                base="mlp", **model))
  config.sample = ml_collections.ConfigDict(dict(
      solver="euler_maruyama", num_steps=100, eps=SB_SIGMA ** 2 / 2,
      num_trajectories=config.sample.num_trajectories))
  return finish(config, arg)
