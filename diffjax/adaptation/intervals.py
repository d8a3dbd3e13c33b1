"""Partitions of diffusion time [0, 1] into intervals: the phases of phasic content fusing
(`diffjax.adaptation.phasic`) and the prompt spectrum of ProSpect
(`diffjax.adaptation.prospect`) both assign each t to one interval.

  boundaries = check_intervals(((0.0, 0.3), (0.3, 1.0)), "method.intervals")
  k = interval_index(t, boundaries)      # (B,) int32: 0 for t < 0.3, 1 for t >= 0.3

Intervals are half-open [lo, hi), the last one closed at t = 1. They must tile [0, 1]:
the first starts at 0, each starts where the one before ends, the last ends at 1.
"""
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError


def check_intervals(intervals, who: str) -> np.ndarray:
  """The (K + 1,) boundaries 0 = b_0 < b_1 < ... < b_K = 1 of K intervals ((lo, hi), ...)
  that tile [0, 1]; ConfigError (one line, naming `who`) for anything else."""
  try:
    pairs = [(float(lo), float(hi)) for lo, hi in intervals]
  except (TypeError, ValueError):
    raise ConfigError(f"{who}={intervals!r} must be a list of (start, end) pairs of times "
                      "tiling [0, 1], e.g. ((0.0, 0.3), (0.3, 1.0)).") from None
  if not pairs:
    raise ConfigError(f"{who} is empty; give (start, end) pairs tiling [0, 1].")
  if pairs[0][0] != 0.0 or pairs[-1][1] != 1.0:
    raise ConfigError(f"{who}={intervals!r} does not cover [0, 1]: it spans "
                      f"[{pairs[0][0]}, {pairs[-1][1]}]; the first interval must start at 0 "
                      "and the last end at 1.")
  for i, (lo, hi) in enumerate(pairs):
    if not lo < hi:
      raise ConfigError(f"{who}[{i}]=({lo}, {hi}) is empty: each interval needs start < end.")
    if i and lo != pairs[i - 1][1]:
      raise ConfigError(f"{who}={intervals!r} does not cover [0, 1] once: interval {i} "
                        f"starts at {lo} but interval {i - 1} ends at {pairs[i - 1][1]} "
                        "(gap or overlap).")
  return np.asarray([0.0] + [hi for _, hi in pairs], np.float32)


def interval_index(t, boundaries) -> jnp.ndarray:
  """(B,) int32 index k of the interval [b_k, b_{k+1}) holding each t (B,) (t = 1 in the
  last)."""
  inner = jnp.asarray(boundaries[1:-1], jnp.float32)
  return jnp.searchsorted(inner, jnp.asarray(t, jnp.float32), side="right").astype(jnp.int32)
