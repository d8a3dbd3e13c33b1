"""Hierarchical positional embeddings: feature grids read at any point of [0, 1]^2.

DDMI ("Domain-Agnostic Latent Diffusion Models for Synthesizing High-Quality Implicit
Neural Representations", Park et al., ICLR 2024, Sec. 3.2) represents a function by
positional embeddings at several resolutions, read at a coordinate by interpolation and
passed with the coordinate to a shared decoder network. A grid of resolution r holds
values at the cell centres ((i + 1/2) / r, (j + 1/2) / r); between centres `bilinear`
interpolates, and beyond the outermost centres it holds the border value.

Coordinates are (P, 2) points (row, column) of the domain [0, 1]^2 (`DOMAIN`); a point
outside it is a usage error (`check_coordinates`).
"""
from typing import Sequence, Tuple

import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError

DOMAIN = (0.0, 1.0)


def grid_coordinates(resolution: int) -> jnp.ndarray:
  """(R * R, 2) cell centres of an R x R pixel grid of [0, 1]^2, row-major."""
  centres = (jnp.arange(resolution) + 0.5) / resolution
  rows, cols = jnp.meshgrid(centres, centres, indexing="ij")
  return jnp.stack([rows.ravel(), cols.ravel()], -1)


def check_coordinates(coordinates, name="coordinates") -> np.ndarray:
  """`coordinates` as a float32 (P, 2) array of points of [0, 1]^2, or ConfigError (one
  line naming the first bad point and the domain)."""
  points = np.asarray(coordinates, np.float32)
  if points.ndim != 2 or points.shape[1] != 2 or not len(points):
    raise ConfigError(f"{name} has shape {points.shape}; give (P, 2) points (row, column) "
                      "of [0, 1]^2 with P >= 1.")
  low, high = DOMAIN
  bad = ~np.all(np.isfinite(points) & (points >= low) & (points <= high), -1)
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise ConfigError(f"{name}[{i}] = {points[i].tolist()} lies outside the domain "
                      f"[{low:g}, {high:g}]^2 of the functions ({int(bad.sum())} of "
                      f"{len(points)} points do).")
  return points


def bilinear(grid: jnp.ndarray, coordinates: jnp.ndarray) -> jnp.ndarray:
  """Values of a grid (r, r, C) at coordinates (P, 2) in [0, 1]^2: (P, C), bilinear
  between cell centres, constant beyond the outermost ones; exact at the centres and
  for affine functions sampled on the grid (between the outermost centres)."""
  r = grid.shape[0]
  if r == 1:
    return jnp.broadcast_to(grid[0, 0], (coordinates.shape[0], grid.shape[-1]))
  s = jnp.clip(coordinates * r - 0.5, 0.0, r - 1.0)
  i0 = jnp.clip(jnp.floor(s), 0, r - 2).astype(jnp.int32)
  w = s - i0
  a, b = i0[:, 0], i0[:, 1]
  wr, wc = w[:, :1], w[:, 1:]
  return ((1 - wr) * (1 - wc) * grid[a, b] + (1 - wr) * wc * grid[a, b + 1]
          + wr * (1 - wc) * grid[a + 1, b] + wr * wc * grid[a + 1, b + 1])


def latent_size(levels: Sequence[Tuple[int, int]]) -> int:
  """Number of values of the hierarchical embedding with levels ((r, C), ...)."""
  return sum(r * r * c for r, c in levels)


def split_levels(z: jnp.ndarray, levels: Sequence[Tuple[int, int]]):
  """A flat embedding z (latent_size,) -> the grids [(r, r, C), ...] of its levels."""
  grids, start = [], 0
  for r, c in levels:
    grids.append(z[start:start + r * r * c].reshape(r, r, c))
    start += r * r * c
  return grids


def read_embedding(z: jnp.ndarray, levels, coordinates: jnp.ndarray) -> jnp.ndarray:
  """The hierarchical embedding z (latent_size,) read at coordinates (P, 2): every
  level's bilinear value side by side, (P, sum C)."""
  return jnp.concatenate([bilinear(g, coordinates) for g in split_levels(z, levels)], -1)


def fourier_features(coordinates: jnp.ndarray, num_frequencies: int) -> jnp.ndarray:
  """(P, 2) -> (P, 2 + 4 F): the coordinates and sin, cos of 2^k pi p, k < F."""
  freqs = jnp.pi * 2.0 ** jnp.arange(num_frequencies)
  angles = (coordinates[:, :, None] * freqs[None, None, :]).reshape(coordinates.shape[0], -1)
  return jnp.concatenate([coordinates, jnp.sin(angles), jnp.cos(angles)], -1)
