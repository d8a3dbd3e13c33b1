"""Shared settings of the flow-matching 2D configs: TorchCFM's 2D MLP and the tiny option.

Every config in this directory is `get_config(arg=None)`; arg "tiny" shrinks it to seconds.
"""
from configs.common import parse_arg, shrink_to_tiny
from configs.toy2d.base import base_config

SIGMA = 0.1       # TorchCFM's constant smoothing for I-CFM, OT-CFM, VP-CFM and FM.
SB_SIGMA = 0.5    # Brownian-bridge sigma of SB-CFM / SF2M (entropic epsilon 2 sigma^2).


def fm_base_config():
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
  return config


def finish(config, arg):
  """Applies the config argument (`experiments.pipeline.parse_arg`): none, or "tiny" (40
  steps and 4 sampler steps, with Heun in place of the adaptive solver, for tests)."""
  _, tiny = parse_arg(arg)
  if tiny:
    shrink_to_tiny(config, num_steps=40, sample_steps=4)
    if config.sample.solver == "dopri5":
      config.sample.update(solver="heun", num_steps=4)
  return config
