"""EDM on two moons: preconditioned denoiser, log-normal noise levels, and the stochastic
Heun sampler with churn on the rho = 7 grid (Karras et al.).

  python -m experiments.main --config=configs/score_2d/edm.py --workdir=/tmp/score_2d_edm

`configs/score_2d/edm.py:tiny` runs in seconds. sigma_data is set to the moons' scale.
"""
from configs.score_2d.common import section, shrink
from configs.toy2d.base import base_config


def get_config(arg=None):
  config = base_config()
  config.data.target = "moons"
  config.path = section(name="edm", sigma_min=0.002, sigma_max=80.0, rho=7.0)
  config.objective = section(name="edm", sigma_data=1.5, p_mean=-1.2, p_std=1.2)
  config.sample = section(solver="edm_churn", num_steps=18, num_trajectories=200,
                          s_churn=5.0, grid="edm")
  config.train.num_steps = 10_000
  config.train.eval_every = 5_000
  return shrink(config, arg)
