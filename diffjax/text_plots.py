"""Matplotlib figures of token samples (built with `matplotlib.figure.Figure`, no pyplot)."""


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
