"""Score-based diffusion on two moons with the VP SDE: noise prediction, DPM-Solver++(2M).

  python -m experiments.main --config=configs/score_2d/vp.py --workdir=/tmp/score_2d_vp

`configs/score_2d/vp.py:tiny` runs in seconds. Other VP-type paths and samplers by flag:
--config.path.name=sub_vp (or iddpm_cosine, rectified_flow), --config.sample.solver=ddim
(heun, rk4, dopri5, dpm_solver_pp_3m, exponential_pc, euler_maruyama, ancestral, ...);
sampler options live in config.sample (e.g. --config.sample.grid=uniform).
"""
from configs.score_2d.common import section, shrink
from configs.toy2d.base import base_config


def get_config(arg=None):
  config = base_config()
  config.data.target = "moons"
  config.path = section(name="vp", beta_min=0.1, beta_max=20.0)
  config.objective = section(name="score_matching", prediction="noise",
                             weighting="prediction", time_sampler="uniform")
  config.sample = section(solver="dpm_solver_pp_2m", num_steps=20, num_trajectories=200,
                          grid="log_snr")
  config.train.num_steps = 10_000
  config.train.eval_every = 5_000
  return shrink(config, arg)
