"""Figures of bridges: paths through snapshots, and convergence curves."""
import numpy as np


def snapshot_paths_figure(paths, train, held_out, dims=(0, 1), title=""):
  """Bridged paths with the snapshots overlaid.

  paths: (K, N + 1, M, D) paths of each segment (or (N + 1, M, D)); train, held_out:
  `Snapshots` (training circles, held-out crosses), coloured by time.
  """
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  paths = np.asarray(paths)
  paths = paths.reshape((-1,) + paths.shape[-3:]) if paths.ndim == 4 else paths[None]
  i, j = dims
  fig = Figure(figsize=(6, 5.5))
  ax = fig.subplots()
  for segment in paths:
    ax.plot(segment[:, :, i], segment[:, :, j], color="black", alpha=0.08, linewidth=0.5)
  times = np.concatenate([train.times, held_out.times])
  low, high = times.min(), times.max()
  span = max(high - low, 1e-12)
  colour = lambda t: (0.1 + 0.8 * (t - low) / span, 0.3, 0.9 - 0.8 * (t - low) / span)
  for snaps, marker, label in ((train, "o", "training snapshot"),
                               (held_out, "x", "held out")):
    for k, (t, points) in enumerate(zip(snaps.times, snaps.points)):
      ax.scatter(points[:, i], points[:, j], s=4, marker=marker, color=colour(t),
                 alpha=0.6, label=label if k == 0 else None)
  ax.set_xlabel(f"x[{i}]")
  ax.set_ylabel(f"x[{j}]")
  ax.legend(loc="best", fontsize=8)
  ax.set_title(title)
  return fig


def convergence_figure(curves, xlabel, ylabel, title="", log_y=True):
  """curves: {label: (x (n,), y (n,))} as lines with markers."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(6, 4))
  ax = fig.subplots()
  for label, (x, y) in curves.items():
    ax.plot(x, y, marker="o", markersize=3, label=label)
  if log_y:
    ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.legend(fontsize=8)
  ax.set_title(title)
  fig.tight_layout()
  return fig
