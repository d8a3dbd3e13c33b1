"""Layered 3D velocity volumes with a fault, and missing-trace masks.

A volume (nx, ny, nz) holds P-wave velocities (km/s) on a grid whose last axis is depth; a
trace is the column v[x, y, :]. Layer boundaries are dipping planes
z = z_k + p x + q y (one dip (p, q) per volume, boundaries z_k spread over the depth), each
layer a constant velocity rising with depth; a vertical fault plane
cos(phi) x + sin(phi) y = c shifts every boundary on one side by `throw` samples. This is
the kind of subsurface SeisFusion ("SeisFusion: Constrained Diffusion Model with Input
Guidance for 3D Seismic Data Interpolation and Reconstruction", 2024) reconstructs from
acquisitions with missing traces. Masks (nx, ny) mark the recorded traces with 1:
"random" drops a fraction of all traces, "regular" drops whole planes x = const (the
crossline sections v[x, :, :]) evenly spread to reach the fraction, so every inline
section v[:, y, :] misses the same traces.
"""
import numpy as np

from diffjax.data.series_files import load_array
from diffjax.errors import ConfigError

MASK_KINDS = ("random", "regular")


def layered_volume(rng, shape=(32, 32, 32), min_layers=3, max_layers=6, max_dip=0.4,
                   max_throw=6):
  """One (nx, ny, nz) float32 volume of velocities in km/s."""
  nx, ny, nz = shape
  num = int(rng.integers(min_layers, max_layers + 1))
  tops = np.sort(rng.uniform(-0.2 * nz, 1.1 * nz, num))
  velocities = np.sort(rng.uniform(1.5, 4.5, num + 1))
  p, q = rng.uniform(-max_dip, max_dip, 2)
  phi = rng.uniform(0, np.pi)
  x, y, z = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
  across = np.cos(phi) * (x - nx / 2) + np.sin(phi) * (y - ny / 2)
  offset = rng.uniform(-0.3, 0.3) * min(nx, ny)
  throw = rng.uniform(-max_throw, max_throw) * (across > offset)
  depth = z - p * (x - nx / 2) - q * (y - ny / 2) - throw
  layer = np.sum(depth[..., None] >= tops, -1)
  return velocities[layer].astype(np.float32)


def layered_volumes(seed, num_volumes, shape=(32, 32, 32), **options):
  """(num_volumes, nx, ny, nz) float32 volumes, reproducible from `seed`."""
  if len(shape) != 3 or min(shape) < 4:
    raise ConfigError(f"A velocity volume needs three sizes >= 4; got {tuple(shape)}.")
  rng = np.random.default_rng(seed)
  return np.stack([layered_volume(rng, tuple(shape), **options) for _ in range(num_volumes)])


def trace_mask(seed, shape, fraction, kind="random"):
  """(nx, ny) float32 mask of recorded traces (1) with `fraction` of them missing."""
  if kind not in MASK_KINDS:
    raise ConfigError(f"Unknown missing-trace pattern {kind!r}; valid: "
                      f"{', '.join(MASK_KINDS)}.")
  if not 0.0 <= fraction < 1.0:
    raise ConfigError(f"The missing-trace fraction must be in [0, 1); got {fraction}.")
  nx, ny = shape
  rng = np.random.default_rng(seed)
  mask = np.ones((nx, ny), np.float32)
  if kind == "random":
    missing = rng.choice(nx * ny, int(round(fraction * nx * ny)), replace=False)
    mask.reshape(-1)[missing] = 0.0
  else:
    count = int(round(fraction * nx))
    rows = np.unique(np.floor((np.arange(count) + 0.5) * nx / max(count, 1)).astype(int))
    mask[rows] = 0.0
  return mask


def check_trace_mask(mask, volume_shape, where="the mask"):
  """Refuses a trace mask that is not (nx, ny) of 0/1 for volumes (nx, ny, nz)."""
  mask = np.asarray(mask)
  if mask.shape != tuple(volume_shape[:2]):
    raise ConfigError(f"{where} has shape {mask.shape}; traces of volumes "
                      f"{tuple(volume_shape)} need a mask of shape {tuple(volume_shape[:2])}.")
  if not np.all((mask == 0) | (mask == 1)):
    raise ConfigError(f"{where} must hold only 0 (missing) and 1 (recorded).")
  if not mask.any():
    raise ConfigError(f"{where} records no trace.")


def load_volumes(path):
  """(V, nx, ny, nz) volumes from a file (.npz array "volumes" or "volume", or .npy); one
  volume (nx, ny, nz) becomes V = 1."""
  volumes = load_array(path, "volumes", what="velocity volumes")
  if volumes.ndim == 3:
    volumes = volumes[None]
  if volumes.ndim != 4:
    raise ConfigError(f"The velocity volumes in {path} have shape {volumes.shape}; they "
                      "must be (nx, ny, nz) or (V, nx, ny, nz).")
  return volumes


def load_trace_mask(path, volume_shape):
  """A user's (nx, ny) trace mask, checked against volumes of `volume_shape`."""
  mask = load_array(path, "mask", what="trace mask")
  check_trace_mask(mask, volume_shape, f"The trace mask in {path}")
  return mask
