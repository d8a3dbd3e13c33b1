"""Shared pieces of the score-based 2D configs."""
import ml_collections

from experiments.toy2d import apply_size_argument


def shrink(config, arg):
  """Applies the config argument: None (the full run) or "tiny" (seconds, for tests)."""
  return apply_size_argument(config, arg)


def section(**entries):
  return ml_collections.ConfigDict(entries)
