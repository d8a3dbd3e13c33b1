"""Figures of graphs: nodes placed by a spectral layout (the eigenvectors of the normalised
Laplacian for its second and third smallest eigenvalues, where two loosely joined
communities fall apart) relaxed by a few force-directed iterations (Fruchterman &
Reingold, "Graph drawing by force-directed placement", 1991) so that a dense community
does not collapse to a point; drawn with matplotlib without networkx."""
import numpy as np


def spectral_layout(adj) -> np.ndarray:
  """(n, n) 0/1 adjacency -> (n, 2) node positions (any n >= 1)."""
  a = np.asarray(adj, np.float64)
  n = len(a)
  if n < 3:
    return np.stack([np.arange(n, dtype=np.float64), np.zeros(n)], 1)
  d = a.sum(1)
  inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-12)), 0.0)
  laplacian = np.eye(n) - inv[:, None] * a * inv[None]
  _, vectors = np.linalg.eigh(laplacian)
  pos = vectors[:, 1:3] + 1e-3 * np.random.default_rng(0).standard_normal((n, 2))
  return _relax(pos / np.maximum(np.abs(pos).max(), 1e-12), a)


def _relax(pos, a, iterations=50, k=None):
  """Fruchterman–Reingold: repulsion k^2 / d between all nodes, attraction d^2 / k along
  edges, displacement capped by a temperature cooling linearly to zero."""
  n = len(pos)
  k = k or 1.0 / np.sqrt(n)
  for i in range(iterations):
    delta = pos[:, None, :] - pos[None, :, :]
    d = np.maximum(np.linalg.norm(delta, axis=-1), 1e-3)
    force = (k ** 2 / d ** 2 - a * d / k)[..., None] * delta
    move = force.sum(1)
    step = 0.1 * (1 - i / iterations)
    length = np.maximum(np.linalg.norm(move, axis=-1, keepdims=True), 1e-12)
    pos = pos + move / length * np.minimum(length, step)
  return pos


def graph_grid_figure(rows, titles, num_columns=8, scale=1.2):
  """One row per list of 0/1 adjacency matrices in `rows`, titled by `titles`."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  num_columns = max(1, min(num_columns, max(len(r) for r in rows)))
  fig = Figure(figsize=(scale * num_columns, scale * len(rows) + 0.3))
  axes = np.asarray(fig.subplots(len(rows), num_columns, squeeze=False))
  for r, (graphs, title) in enumerate(zip(rows, titles)):
    for c in range(num_columns):
      ax = axes[r, c]
      ax.set_axis_off()
      if c >= len(graphs):
        continue
      adj = np.asarray(graphs[c])
      pos = spectral_layout(adj)
      for i, j in np.argwhere(np.triu(adj, 1)):
        ax.plot(pos[[i, j], 0], pos[[i, j], 1], color="0.6", linewidth=0.5)
      ax.scatter(pos[:, 0], pos[:, 1], s=6, color="C0", zorder=2)
      if c == 0:
        ax.set_title(title, fontsize=8, loc="left")
  return fig


def mmd_table_figure(rows, statistics=("degree", "clustering", "orbit")):
  """A table of squared MMDs: `rows` maps a row label to {statistic: value} or
  {statistic: (mean, std)}; values print with three significant digits."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  def cell(value):
    if isinstance(value, tuple):
      return f"{value[0]:.3g} ± {value[1]:.2g}"
    return f"{value:.3g}"
  text = [[cell(values[name]) for name in statistics] for values in rows.values()]
  fig = Figure(figsize=(7.0, 0.45 * (len(rows) + 1) + 0.2))
  ax = fig.subplots()
  ax.set_axis_off()
  table = ax.table(cellText=text, rowLabels=list(rows), colLabels=list(statistics),
                   loc="center", cellLoc="center")
  table.scale(1.0, 1.3)
  return fig
