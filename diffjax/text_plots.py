"""Matplotlib figures of token samples (built with `matplotlib.figure.Figure`, no pyplot)."""

import numpy as np


def text_figure(lines, title=""):
  """Decoded samples, one per line (newlines shown as a return arrow), as a figure."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  lines = [line.replace("\n", "\u21b5") for line in lines]
  fig = Figure(figsize=(10, 0.17 * len(lines) + 0.8))
  ax = fig.subplots()
  ax.axis("off")
  ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top")
  ax.set_title(title)
  return fig


def compute_figure(points, fits=None, references=None,
                   title="Validation bits per character against compute"):
  """Loss against training compute for several objectives, on log-log axes.

  points: {objective: (compute (n,), bits per character (n,))}, every run of a sweep;
  fits: optional {objective: `diffjax.scaling.PowerLaw`} of each compute frontier, drawn
  as a line over the compute range; references: optional {label: bits per character}
  drawn as dashed horizontal lines (e.g. the unigram entropy).
  """
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top  (slow import)
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(6, 4.2))
  ax = fig.subplots()
  for (name, (compute, loss)), color in zip(points.items(), ("C0", "C3", "C2", "C1")):
    ax.scatter(compute, loss, color=color, s=18, label=f"{name} (runs)")
    if fits and name in fits:
      grid = np.geomspace(np.min(compute), np.max(compute) * 4, 50)
      law = fits[name]
      ax.plot(grid, law.loss(grid), color=color,
              label=f"{name}: {law.scale:.3g} C^-{law.exponent:.3f}")
  for (label, value), style in zip((references or {}).items(), ("--", ":", "-.")):
    ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=label)
  ax.set_xscale("log")
  ax.set_yscale("log")
  for axis in (ax.xaxis, ax.yaxis):  # Label the decades and a few plain values only.
    axis.set_minor_formatter(ticker.NullFormatter())
  ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
  ax.yaxis.set_minor_locator(ticker.NullLocator())
  low, high = ax.get_ylim()
  ax.set_yticks(np.round(np.linspace(low, high, 6), 2))
  ax.set_xlabel("training compute (FLOPs, XLA cost analysis)")
  ax.set_ylabel("validation bits per character")
  ax.set_title(title)
  ax.legend(fontsize=7)
  fig.tight_layout()
  return fig
