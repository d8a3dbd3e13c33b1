"""Missing-trace reconstruction of seismic sections: baselines and the score.

Sections are 2D slices (B, nx, nz) of a volume (x along the acquisition line, z depth); a
trace is section[:, x, :] and a mask (B, nx) marks the recorded ones. Baselines
(`TRACE_INTERPOLATORS`) fill each missing trace from the recorded ones along x, depth by
depth: "linear" (linear in x between the nearest recorded traces on either side, the
nearest one beyond the ends) and "nearest" (a copy of the nearest recorded trace; ties to
the left). `snr_db` is the reconstruction signal-to-noise ratio of SeisFusion's tables,
10 log10(|x - mean x|^2 / |x - x_hat|^2) per section (the mean removed, so that the
velocities' offset does not inflate it); `pooled_snr_db` the same ratio over a whole set
of sections (finite where some are restored exactly, as a nearest-trace copy of a section
without dip can be).
"""
import numpy as np

from diffjax.errors import ConfigError
from diffjax.registry import Registry

TRACE_INTERPOLATORS = Registry("trace interpolator")


def _recorded(mask_row):
  known = np.flatnonzero(np.asarray(mask_row) > 0)
  if not len(known):
    raise ConfigError("A section has no recorded trace to interpolate from.")
  return known


@TRACE_INTERPOLATORS.register("linear")
def linear_traces(section, mask_row):
  """(nx, nz) section with its missing traces linearly interpolated along x."""
  known = _recorded(mask_row)
  xs = np.arange(section.shape[0])
  return np.stack([np.interp(xs, known, section[known, z]) for z in
                   range(section.shape[1])], 1)


@TRACE_INTERPOLATORS.register("nearest")
def nearest_traces(section, mask_row):
  """(nx, nz) section with each missing trace copied from the nearest recorded one."""
  known = _recorded(mask_row)
  xs = np.arange(section.shape[0])
  nearest = known[np.argmin(np.abs(xs[:, None] - known[None]), 1)]
  return section[nearest]


def interpolate_traces(name, sections, masks):
  """(B, nx, nz) sections with missing traces (masks (B, nx)) filled by `name`."""
  fill = TRACE_INTERPOLATORS.get(name)
  return np.stack([fill(np.asarray(s), m) for s, m in zip(sections, masks)])


def snr_db(truth, estimate):
  """(B,) SNR in dB of each section's estimate (module docstring)."""
  truth = np.asarray(truth, np.float64).reshape(len(truth), -1)
  error = truth - np.asarray(estimate, np.float64).reshape(len(truth), -1)
  signal = truth - truth.mean(1, keepdims=True)
  return 10 * np.log10(np.sum(signal ** 2, 1) / np.maximum(np.sum(error ** 2, 1), 1e-20))


def pooled_snr_db(truth, estimate):
  """The SNR in dB of a set of sections taken together: 10 log10(sum |x - mean x|^2 /
  sum |x - x_hat|^2), each section's own mean removed. Unlike the mean of `snr_db` it
  stays finite when some sections are restored exactly."""
  truth = np.asarray(truth, np.float64).reshape(len(truth), -1)
  error = truth - np.asarray(estimate, np.float64).reshape(len(truth), -1)
  signal = truth - truth.mean(1, keepdims=True)
  return float(10 * np.log10(np.sum(signal ** 2) / max(np.sum(error ** 2), 1e-20)))


SLICE_AXES = ("x", "y")


def _axis_index(axis):
  if axis not in SLICE_AXES:
    raise ConfigError(f"Unknown slicing axis {axis!r}; valid: {', '.join(SLICE_AXES)}.")
  return SLICE_AXES.index(axis)


def volume_slices(volumes, masks, axis="x"):
  """Sections of volumes (V, nx, ny, nz) with trace masks (V, nx, ny) cut along `axis`:
  "x" gives the inline sections v[:, j, :] (V * ny of them, (nx, nz), traces along x;
  masks (V * ny, nx)), "y" the crossline sections v[i, :, :] (V * nx, (ny, nz); masks
  (V * nx, ny)). Section s is volume s // m, slice s % m (m the other axis' size)."""
  volumes, masks = np.asarray(volumes), np.asarray(masks)
  if _axis_index(axis) == 0:
    volumes, masks = np.moveaxis(volumes, 2, 1), np.moveaxis(masks, 2, 1)
  return (volumes.reshape(-1, volumes.shape[2], volumes.shape[3]),
          masks.reshape(-1, masks.shape[2]))


def stack_slices(sections, num_volumes, axis="x"):
  """The inverse of `volume_slices` with extra axes kept: sections (V * m, *extra, n, nz)
  cut along `axis` -> volumes (V, *extra, nx, ny, nz)."""
  sections = np.asarray(sections)
  grouped = sections.reshape(num_volumes, -1, *sections.shape[1:])   # (V, m, *extra, n, nz)
  # The slice index m moves next to its volume axis: after n for "x" (v[:, j, :] has x
  # first), before it for "y".
  return np.moveaxis(grouped, 1, -2 if _axis_index(axis) == 0 else -3)
