"""SB-CFM: entropic-OT pairs (epsilon = 2 sigma^2) and Brownian-bridge noise
sigma sqrt(t (1 - t)) (Tong et al., sec. 4, eq. 20-21).

  python -m experiments.main --config=configs/flow_matching_2d/sbcfm.py --workdir=/tmp/sbcfm
"""
from configs.flow_matching_2d.common import SB_SIGMA, finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  config.coupling.update(name="sinkhorn_ot", epsilon=2 * SB_SIGMA ** 2)
  config.path.update(name="linear", gamma="sqrt", gamma_scale=SB_SIGMA)
  config.objective.name = "flow_matching"
  return finish(config, arg)
