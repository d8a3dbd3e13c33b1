"""Shared settings of the flow-matching 2D configs: TorchCFM's 2D MLP and the tiny option.

Every config in this directory is `get_config(arg=None)`; arg "tiny" shrinks it to seconds.
"""
from experiments.toy2d import apply_size_argument, base_config

SIGMA = 0.1       # TorchCFM's constant smoothing for I-CFM, OT-CFM, VP-CFM and FM.
SB_SIGMA = 0.5    # Brownian-bridge sigma of SB-CFM / SF2M (entropic epsilon 2 sigma^2).


def fm_base_config(arg=None):
  """N(0, I) -> 8 gaussians with TorchCFM's MLP (width 64, 3 SELU layers, time concat)."""
  config = base_config()
  config.data.source = "standard_normal"
  config.data.target = "eight_gaussians"
  config.model.update(width=64, depth=3, activation="selu", time_embedding="concat")
  config.train.num_steps = 20_000
  config.train.eval_every = 5_000
  config.train.checkpoint_every = 5_000
  config.optim.schedule = "constant"
  config.sample.solver = "dopri5"
  config.sample.num_steps = 20
  return shrink(config, arg)


def shrink(config, arg):
  """Applies the config argument: None (the full run) or "tiny" (seconds, for tests)."""
  config = apply_size_argument(config, arg, num_steps=40)
  if arg == "tiny":
    config.sample.update(solver="heun", num_steps=4)
  return config
