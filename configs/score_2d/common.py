"""Shared pieces of the score-based 2D configs."""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny


def shrink(config, arg):
  """Applies the config argument (`experiments.pipeline.parse_arg`): none (the full run) or
  "tiny" (seconds, for tests)."""
  _, tiny = parse_arg(arg)
  return shrink_to_tiny(config) if tiny else config


def section(**entries):
  return ml_collections.ConfigDict(entries)
