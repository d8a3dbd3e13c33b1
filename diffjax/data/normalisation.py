"""Per-dimension standardisation of vector data, invertible exactly up to float rounding.

"Synthetic Experience Replay" (Sec. 3.1) standardises every dimension of a transition to
zero mean and unit variance before diffusion and leaves the terminal flags as they are;
"Diffusion-Based Neural Network Weights Generation" normalises each layer of a network.
Both are a `Standardizer` (mean, std per dimension): `skip` dimensions keep mean 0 and
std 1, and a dimension whose spread is below `floor` (a constant column) gets std 1.
"""
from typing import NamedTuple, Sequence

import numpy as np


class Standardizer(NamedTuple):
  """mean, std: (D,) float arrays; x_norm = (x - mean) / std."""
  mean: np.ndarray
  std: np.ndarray

  def normalise(self, x):
    """(..., D) data -> (..., D) standardised data."""
    return (x - self.mean) / self.std

  def denormalise(self, z):
    """(..., D) standardised data -> (..., D) data (the inverse of `normalise`)."""
    return z * self.std + self.mean


def fit_standardizer(x, skip: Sequence[int] = (), floor: float = 1e-6) -> Standardizer:
  """The per-dimension mean and std of x (N, D); `skip` dimensions (e.g. terminal flags)
  and constant dimensions (std < floor) are left unscaled (std 1; mean 0 for `skip`)."""
  x = np.asarray(x, np.float64)
  mean, std = x.mean(0), x.std(0)
  std = np.where(std < floor, 1.0, std)
  skip = list(skip)
  mean[skip], std[skip] = 0.0, 1.0
  return Standardizer(mean.astype(np.float32), std.astype(np.float32))


def fit_group_standardizer(x, groups: Sequence[slice]) -> Standardizer:
  """One mean and std per group of dimensions (e.g. per layer of a flattened network:
  "Diffusion-Based Neural Network Weights Generation", Sec. 3.1), each over every entry of
  the group in x (N, D); the groups must cover the D dimensions."""
  x = np.asarray(x, np.float64)
  mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
  for group in groups:
    values = x[:, group]
    mean[group] = values.mean()
    spread = values.std()
    std[group] = spread if spread > 1e-12 else 1.0
  return Standardizer(mean.astype(np.float32), std.astype(np.float32))
