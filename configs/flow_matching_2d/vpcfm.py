"""VP-CFM: x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1 + sigma z, independent pairs.

  python -m experiments.main --config=configs/flow_matching_2d/vpcfm.py --workdir=/tmp/vpcfm
"""
from configs.flow_matching_2d.common import SIGMA, finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  config.coupling.name = "independent"
  config.path.update(name="vp_cfm", gamma="constant", gamma_scale=SIGMA)
  config.objective.name = "flow_matching"
  return finish(config, arg)
