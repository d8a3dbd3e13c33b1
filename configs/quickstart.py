"""Quickstart: flow matching from N(0, I) to two moons, trained in about a minute on a CPU.

  python -m experiments.main --config=configs/quickstart.py --workdir=/tmp/quickstart

`configs/quickstart.py:tiny` is a seconds-long version for tests and smoke checks.
"""
from experiments.toy2d import base_config


def get_config(arg=None):
  config = base_config()
  config.data.source = "standard_normal"
  config.data.target = "moons"
  config.train.num_steps = 12_000
  config.train.eval_every = 4_000
  config.train.checkpoint_every = 1_000
  if arg == "tiny":
    config.train.num_steps = 200
    config.train.batch_size = 64
    config.train.steps_per_call = 50
    config.train.log_every = 50
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    config.model.width = 32
    config.model.depth = 2
    config.sample.num_steps = 10
    config.eval.num_samples = 256
    config.sample.num_trajectories = 32
  elif arg is not None:
    raise ValueError(f"Unknown config argument {arg!r}; valid: tiny (or none).")
  return config
