"""Matplotlib figures of 2D samples and trajectories (written as PNG by the engine).

Figures are built with `matplotlib.figure.Figure`, not pyplot, so they render headless
without touching the global backend (a notebook keeps its own inline backend).
"""
import numpy as np
from matplotlib.figure import Figure


def _limits(*arrays):
  points = np.concatenate([np.asarray(a).reshape(-1, 2) for a in arrays])
  low, high = np.percentile(points, 0.5, 0), np.percentile(points, 99.5, 0)
  pad = 0.1 * (high - low)
  return low - pad, high + pad


def scatter_figure(samples, reference, title=""):
  """Generated samples (N, 2) next to held-out reference samples (M, 2)."""
  low, high = _limits(samples, reference)
  fig = Figure(figsize=(8, 4))
  axes = fig.subplots(1, 2, sharex=True, sharey=True)
  for ax, points, name in zip(axes, (reference, samples), ("target", "generated")):
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5)
    ax.set_title(name)
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
  fig.suptitle(title)
  return fig


def trajectory_figure(trajectories, title=""):
  """Trajectories (T, N, 2) from t = 0 (black) to t = 1 (blue)."""
  traj = np.asarray(trajectories)
  fig = Figure(figsize=(5, 5))
  ax = fig.subplots()
  ax.plot(traj[:, :, 0], traj[:, :, 1], color="olive", alpha=0.3, linewidth=0.5)
  ax.scatter(traj[0, :, 0], traj[0, :, 1], s=3, color="black", label="t = 0")
  ax.scatter(traj[-1, :, 0], traj[-1, :, 1], s=3, color="tab:blue", label="t = 1")
  ax.legend(loc="upper right")
  ax.set_aspect("equal")
  ax.set_title(title)
  return fig
