"""Matplotlib figures of 2D samples and trajectories (written as PNG by the engine).

Figures are built with `matplotlib.figure.Figure`, not pyplot, so they render headless
without touching the global backend (a notebook keeps its own inline backend). Their size
follows the data's aspect ratio, so a saved figure has no blank band around equal-aspect
panels. Non-finite points (a diverging model) are left out and counted in the title.
"""
import numpy as np

PANEL_WIDTH = 4.0  # Inches.


def _finite_rows(points):
  points = np.asarray(points, np.float64).reshape(-1, 2)
  return points[np.all(np.isfinite(points), axis=-1)]


def _limits(*arrays):
  """(low, high) corners covering 99% of the finite points, padded; a unit box if none."""
  points = np.concatenate([_finite_rows(a) for a in arrays])
  if not len(points):
    return np.array([-1.0, -1.0]), np.array([1.0, 1.0])
  low, high = np.percentile(points, 0.5, 0), np.percentile(points, 99.5, 0)
  pad = 0.1 * np.maximum(high - low, 1e-6)
  return low - pad, high + pad


def _panel_height(low, high):
  """The height of an equal-aspect panel PANEL_WIDTH wide, within [1.5, 2 * width]."""
  ratio = (high[1] - low[1]) / (high[0] - low[0])
  return float(np.clip(PANEL_WIDTH * ratio, 1.5, 2 * PANEL_WIDTH))


def _non_finite_note(points):
  points = np.asarray(points).reshape(-1, 2)
  bad = len(points) - len(_finite_rows(points))
  return f" [{bad} of {len(points)} non-finite, not shown]" if bad else ""


def scatter_figure(samples, reference, title=""):
  """Generated samples (N, 2) next to held-out reference samples (M, 2)."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  low, high = _limits(samples, reference)
  fig = Figure(figsize=(2 * PANEL_WIDTH, _panel_height(low, high) + 0.8),
               layout="constrained")
  axes = fig.subplots(1, 2, sharex=True, sharey=True)
  for ax, points, name in zip(axes, (reference, samples), ("target", "generated")):
    finite = _finite_rows(points)
    ax.scatter(finite[:, 0], finite[:, 1], s=2, alpha=0.5)
    ax.set_title(name + _non_finite_note(points))
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
  fig.suptitle(title)
  return fig


def trajectory_figure(trajectories, title=""):
  """Trajectories (T, N, 2) from t = 0 (black) to t = 1 (blue); trajectories with a
  non-finite point are left out."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  traj = np.asarray(trajectories, np.float64)
  finite = np.all(np.isfinite(traj), axis=(0, 2))
  shown = traj[:, finite]
  low, high = _limits(shown) if shown.size else _limits(np.zeros((0, 2)))
  fig = Figure(figsize=(PANEL_WIDTH + 1, _panel_height(low, high) + 0.6),
               layout="constrained")
  ax = fig.subplots()
  ax.plot(shown[:, :, 0], shown[:, :, 1], color="olive", alpha=0.3, linewidth=0.5)
  ax.scatter(shown[0, :, 0], shown[0, :, 1], s=3, color="black", label="t = 0")
  ax.scatter(shown[-1, :, 0], shown[-1, :, 1], s=3, color="tab:blue", label="t = 1")
  ax.legend(loc="upper right")
  ax.set_xlim(low[0], high[0])
  ax.set_ylim(low[1], high[1])
  ax.set_aspect("equal")
  bad = int((~finite).sum())
  note = f" [{bad} of {finite.size} non-finite, not shown]" if bad else ""
  ax.set_title(title + note)
  return fig
