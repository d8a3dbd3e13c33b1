"""A stochastic interpolant: trigonometric path with gamma = sqrt(t (1 - t)), learning the
velocity of the deterministic part and the denoiser, sampled by the SDE with eps = 0.5
("Stochastic Interpolants: A Unifying Framework for Flows and Diffusions").

  python -m experiments.main --config=configs/flow_matching_2d/stochastic_interpolant.py \
      --workdir=/tmp/si
"""
import ml_collections

from configs.flow_matching_2d.common import finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  config.path.update(name="trigonometric", gamma="sqrt")
  config.objective = ml_collections.ConfigDict(dict(
      name="interpolant", heads=("deterministic_velocity", "denoiser"), antithetic=True,
      time_sampler="uniform", t_min=1e-3, t_max=1 - 1e-3))
  model = config.model.to_dict()
  model.pop("name")
  config.model = ml_collections.ConfigDict(dict(name="stacked_fields", num_fields=2,
                                                base="mlp", **model))
  config.sample = ml_collections.ConfigDict(dict(
      solver="euler_maruyama", num_steps=200, eps=0.5,
      num_trajectories=config.sample.num_trajectories))
  return finish(config, arg)
