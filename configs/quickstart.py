"""Quickstart: flow matching from N(0, I) to two moons, trained in about a minute on a CPU.

  python -m experiments.main --config=configs/quickstart.py --workdir=/tmp/quickstart

`configs/quickstart.py:tiny` is a seconds-long version for tests and smoke checks.
"""
from configs.common import parse_arg, shrink_to_tiny
from configs.toy2d.base import base_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = base_config()
  config.data.source = "standard_normal"
  config.data.target = "moons"
  config.train.num_steps = 12_000
  config.train.eval_every = 4_000
  config.train.checkpoint_every = 1_000
  return shrink_to_tiny(config) if tiny else config
