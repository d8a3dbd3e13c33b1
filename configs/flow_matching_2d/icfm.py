"""I-CFM: independent pairs, straight path with constant sigma = 0.1 (Tong et al., eq. 14).

  python -m experiments.main --config=configs/flow_matching_2d/icfm.py --workdir=/tmp/icfm
"""
from configs.flow_matching_2d.common import SIGMA, finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  config.coupling.name = "independent"
  config.path.update(name="linear", gamma="constant", gamma_scale=SIGMA)
  config.objective.name = "flow_matching"
  return finish(config, arg)
