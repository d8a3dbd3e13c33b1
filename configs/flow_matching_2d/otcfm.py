"""OT-CFM: pairs from the exact minibatch OT plan (POT's network simplex in the step).

  python -m experiments.main --config=configs/flow_matching_2d/otcfm.py --workdir=/tmp/otcfm
"""
from configs.flow_matching_2d.common import SIGMA, finish, fm_base_config


def get_config(arg=None):
  config = fm_base_config()
  config.coupling.update(name="exact_ot", solver="pot")
  config.path.update(name="linear", gamma="constant", gamma_scale=SIGMA)
  config.objective.name = "flow_matching"
  return finish(config, arg)
