"""Offline replay buffers of (s, a, r, s', done) transitions as `.npz` files and as flat
vectors.

A buffer is a dict of arrays with one row per transition: observations (N, S),
actions (N, A), rewards (N,), next_observations (N, S), terminals (N,) in {0, 1} (the D4RL
names). "Synthetic Experience Replay" (Sec. 3.1) models a transition as one vector
[s, a, r, s', done] of S + A + 1 + S + 1 values: `flatten_transitions` and
`split_transitions` map between the two forms exactly.
"""
from typing import Mapping

import numpy as np

from diffjax.data.npz_files import read_npz
from diffjax.errors import ConfigError

TRANSITION_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


def check_buffer(buffer: Mapping[str, np.ndarray], where: str = "the replay buffer") -> dict:
  """The buffer as float32 arrays, or a ConfigError naming the first missing key, the
  first array of the wrong shape or length, and the first non-finite entry."""
  missing = [k for k in TRANSITION_KEYS if k not in buffer]
  if missing:
    raise ConfigError(f"{where} lacks the key(s) {', '.join(missing)}; a buffer has "
                      f"{', '.join(TRANSITION_KEYS)}.")
  arrays = {k: np.asarray(buffer[k], np.float32) for k in TRANSITION_KEYS}
  n = arrays["rewards"].shape[0] if arrays["rewards"].ndim else 0
  expected = {"observations": 2, "actions": 2, "rewards": 1, "next_observations": 2,
              "terminals": 1}
  for key, ndim in expected.items():
    array = arrays[key]
    if array.ndim != ndim or array.shape[0] != n or n == 0:
      rows = "(N,)" if ndim == 1 else "(N, dim)"
      raise ConfigError(f"{where}: {key} has shape {array.shape}; every key needs {rows} "
                        f"with the same N > 0 rows (rewards have {n}).")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
      raise ConfigError(f"{where}: {key} has a non-finite value ({array[tuple(bad[0])]}) "
                        f"in row {bad[0][0]}; drop or repair such transitions.")
  if arrays["observations"].shape != arrays["next_observations"].shape:
    raise ConfigError(f"{where}: observations {arrays['observations'].shape} and "
                      f"next_observations {arrays['next_observations'].shape} differ.")
  if not np.isin(arrays["terminals"], (0.0, 1.0)).all():
    raise ConfigError(f"{where}: terminals must be 0 or 1.")
  return arrays


def save_buffer(path: str, buffer: Mapping[str, np.ndarray]):
  """Writes a checked buffer to `path` (.npz)."""
  np.savez(path, **check_buffer(buffer))


def load_buffer(path: str) -> dict:
  """Reads and checks the buffer in `path` (.npz); ConfigError for a missing or
  malformed file."""
  buffer = read_npz(path, "replay buffer")
  return check_buffer(buffer, f"replay buffer {path!r}")


def transition_dims(buffer) -> dict:
  """{key: width} of each part of a flattened transition, in TRANSITION_KEYS order."""
  return {k: (1 if buffer[k].ndim == 1 else buffer[k].shape[1]) for k in TRANSITION_KEYS}


def flatten_transitions(buffer) -> np.ndarray:
  """(N, S + A + 1 + S + 1) vectors [s, a, r, s', done] of a buffer."""
  return np.concatenate([np.asarray(buffer[k], np.float32).reshape(len(buffer["rewards"]), -1)
                         for k in TRANSITION_KEYS], axis=1)


def split_transitions(x, dims: Mapping[str, int]) -> dict:
  """The inverse of `flatten_transitions`: (N, D) vectors -> a buffer with parts of
  widths `dims` (`transition_dims`); rewards and terminals come back as (N,)."""
  x = np.asarray(x, np.float32)
  total = sum(dims[k] for k in TRANSITION_KEYS)
  if x.ndim != 2 or x.shape[1] != total:
    raise ValueError(f"Transitions of width {total} expected; got shape {x.shape}.")
  parts, start = {}, 0
  for key in TRANSITION_KEYS:
    part = x[:, start:start + dims[key]]
    parts[key] = part[:, 0] if key in ("rewards", "terminals") else part
    start += dims[key]
  return parts


def subsample_buffer(buffer, fraction: float, episode_length: int, seed: int = 0) -> dict:
  """A `fraction` of the buffer's whole episodes (rows are episode-major, each episode
  `episode_length` rows), drawn without replacement; at least one episode."""
  n = len(buffer["rewards"])
  num_episodes = n // episode_length
  keep = max(1, int(round(fraction * num_episodes)))
  chosen = np.sort(np.random.default_rng(seed).permutation(num_episodes)[:keep])
  rows = (chosen[:, None] * episode_length + np.arange(episode_length)).reshape(-1)
  return {k: np.asarray(v)[rows] for k, v in buffer.items()}

