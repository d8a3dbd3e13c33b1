"""Lipman's flow matching: x_t = (1 - (1 - sigma_min) t) x0 + t x1 from a Gaussian source
("Flow Matching for Generative Modeling", eq. 20-21).

  python -m experiments.main --config=configs/flow_matching_2d/fm.py --workdir=/tmp/fm
"""
from configs.flow_matching_2d.common import SIGMA, finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  if config.data.source != "standard_normal":
    raise ValueError("Lipman's flow matching needs the standard normal source.")
  config.coupling.name = "independent"
  config.path.update(name="lipman", sigma_min=SIGMA)
  config.objective.name = "flow_matching"
  return finish(config, arg)
