"""Score-based diffusion on two moons with the VE SDE (sigma 0.01 -> 10) and Song et al.'s
predictor-corrector sampler (ancestral predictor, Langevin corrector at snr 0.16).

  python -m experiments.main --config=configs/score_2d/ve.py --workdir=/tmp/score_2d_ve

`configs/score_2d/ve.py:tiny` runs in seconds. The source is the path's prior
N(0, sigma_max^2 I) (experiments/toy2d.py draws x0 from a Gaussian path's prior).
"""
from configs.score_2d.common import section, shrink
from configs.toy2d.base import base_config


def get_config(arg=None):
  config = base_config()
  config.data.target = "moons"
  config.path = section(name="ve", sigma_min=0.01, sigma_max=10.0)
  # Noise prediction with its own residual = Song et al.'s lambda(sigma) = sigma^2 weighting.
  config.objective = section(name="score_matching", prediction="noise",
                             weighting="prediction", time_sampler="uniform")
  config.sample = section(solver="pc_langevin", num_steps=200, num_trajectories=200,
                          snr=0.16, corrector_steps=1)
  config.train.num_steps = 10_000
  config.train.eval_every = 5_000
  return shrink(config, arg)
