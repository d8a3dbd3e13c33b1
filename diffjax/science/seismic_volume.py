"""3D missing-trace reconstruction: volumes restored from a model of 2D sections, and
the 3D interpolation baselines.

SeisFusion ("SeisFusion: Constrained Diffusion Model with Input Guidance for 3D Seismic
Data Interpolation and Reconstruction", 2024) restores volumes (nx, ny, nz) whose missing
traces are whole columns v[x, y, :] (trace mask (nx, ny), 1 where recorded). Its 2D-slice
option, done here: the volume is cut into sections along each axis of `axes`
(`diffjax.science.seismic.volume_slices`: "x" the inline sections v[:, j, :], "y" the
crossline ones v[i, :, :]), every section is restored by a 2D sampler under input
guidance with that section's recorded traces, and the sections are stacked back. With
both axes the two volumes are averaged trace by trace over the axes whose section
through the trace records at least one trace (a section with none is an unconditional
draw that knows nothing of this volume); a trace that no axis covers takes the plain
mean. The average of exact copies is exact, so recorded traces stay unchanged.

Baselines (`VOLUME_INTERPOLATORS`) fill each missing trace from the recorded ones in the
(x, y) plane, depth by depth, in 3D rather than along one line:
"linear"   piecewise linear on the Delaunay triangulation of the recorded trace
           positions (exact for a volume affine in (x, y) at every depth); outside their
           convex hull the nearest recorded trace;
"nearest"  a copy of the recorded trace nearest in (x, y) (Euclidean; ties to the first in
           x-major order).
"""
import numpy as np

from diffjax.errors import ConfigError
from diffjax.registry import Registry
from diffjax.science.seismic import SLICE_AXES, stack_slices, volume_slices

VOLUME_INTERPOLATORS = Registry("volume interpolator")


def _positions(mask):
  """(recorded (k, 2), missing (m, 2)) integer (x, y) positions of a (nx, ny) mask."""
  recorded, missing = np.argwhere(mask > 0), np.argwhere(mask <= 0)
  if not len(recorded):
    raise ConfigError("A volume has no recorded trace to interpolate from.")
  return recorded, missing


def _nearest(recorded, missing):
  """Index into `recorded` of the nearest recorded position to each missing one."""
  distance = np.sum((missing[:, None, :] - recorded[None, :, :]) ** 2, -1)
  return np.argmin(distance, 1)       # argmin keeps the first of ties (x-major order).


@VOLUME_INTERPOLATORS.register("nearest")
def nearest_volume(volume, mask):
  """(nx, ny, nz) volume with each missing trace copied from the nearest recorded one."""
  recorded, missing = _positions(mask)
  out = np.array(volume, np.float64)
  if len(missing):
    source = recorded[_nearest(recorded, missing)]
    out[missing[:, 0], missing[:, 1]] = out[source[:, 0], source[:, 1]]
  return out


@VOLUME_INTERPOLATORS.register("linear")
def linear_volume(volume, mask):
  """(nx, ny, nz) volume with its missing traces linearly interpolated in (x, y)."""
  # Imported here, not at the top: scipy.interpolate takes about a second to import.
  from scipy.interpolate import LinearNDInterpolator  # pylint: disable=g-import-not-at-top
  recorded, missing = _positions(mask)
  out = np.array(volume, np.float64)
  if not len(missing):
    return out
  traces = out[recorded[:, 0], recorded[:, 1]]                        # (k, nz)
  if len(recorded) >= 3 and np.linalg.matrix_rank(recorded - recorded[0]) == 2:
    filled = LinearNDInterpolator(recorded.astype(np.float64), traces)(
        missing.astype(np.float64))
  else:                               # Collinear positions span no triangle.
    filled = np.full((len(missing), out.shape[-1]), np.nan)
  outside = np.isnan(filled).any(1)
  filled[outside] = traces[_nearest(recorded, missing[outside])]
  out[missing[:, 0], missing[:, 1]] = filled
  return out


def interpolate_volumes(name, volumes, masks):
  """(V, nx, ny, nz) volumes with missing traces (masks (V, nx, ny)) filled by `name`."""
  check_volume_masks(volumes, masks)
  fill = VOLUME_INTERPOLATORS.get(name)
  return np.stack([fill(v, m) for v, m in zip(np.asarray(volumes), np.asarray(masks))])


def check_volume_masks(volumes, masks):
  """Refuses trace masks that are not (V, nx, ny) for volumes (V, nx, ny, nz)."""
  volumes, masks = np.shape(volumes), np.shape(masks)
  if len(volumes) != 4 or masks != volumes[:3]:
    raise ConfigError(f"Trace masks of shape {masks} do not fit volumes of shape "
                      f"{volumes}: volumes (V, nx, ny, nz) need masks (V, nx, ny).")


def reconstruct_volumes(restore, volumes, masks, axes=SLICE_AXES):
  """Volumes (V, D, nx, ny, nz) restored slice by slice (module docstring), and the
  per-axis volumes {axis: (V, D, nx, ny, nz)}.

  restore(sections (S, n, nz), section_masks (S, n), axis) -> (S, D, n, nz): D draws of
  each section with its missing traces filled (its recorded ones kept); it only ever sees
  the recorded traces (the missing ones are zeroed before the call)."""
  check_volume_masks(volumes, masks)
  axes = tuple(axes)
  if not axes or len(set(axes)) != len(axes):
    raise ConfigError(f"The slicing axes {axes} must be distinct names among "
                      f"{', '.join(SLICE_AXES)}.")
  volumes, masks = np.asarray(volumes), np.asarray(masks) > 0
  observed = np.where(masks[..., None], volumes, 0.0)
  estimates, weights = {}, []
  for axis in axes:
    sections, section_masks = volume_slices(observed, masks, axis)
    restored = np.asarray(restore(sections, section_masks.astype(np.float32), axis))
    if restored.ndim != 4 or restored.shape[:1] + restored.shape[2:] != sections.shape:
      raise ValueError(f"restore returned {restored.shape} for sections {sections.shape}; "
                       "expected (S, draws, n, nz).")
    estimates[axis] = stack_slices(restored, len(volumes), axis)
    covered = np.repeat(section_masks.any(1, keepdims=True), section_masks.shape[1], 1)
    weights.append(stack_slices(covered[..., None], len(volumes), axis)[..., 0])  # (V, nx, ny)
  weights = np.stack(weights).astype(np.float64)                      # (A, V, nx, ny)
  weights = np.where(weights.sum(0) > 0, weights, 1.0)
  total = sum(w[:, None, :, :, None] * estimates[a] for w, a in zip(weights, axes))
  return total / weights.sum(0)[:, None, :, :, None], estimates
