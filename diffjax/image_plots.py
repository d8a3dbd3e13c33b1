"""Matplotlib figures of image samples (built with `matplotlib.figure.Figure`, no pyplot)."""
import numpy as np


def image_grid(images, num_columns=8, gap=1, background=1.0):
  """(N, H, W, C) floats in [-1, 1] -> one (rows (H + gap) - gap, cols (W + gap) - gap, C)
  array in [0, 1], images laid out row by row; C = 1 is returned as (..., H', W')."""
  images = np.clip((np.asarray(images, np.float32) + 1) / 2, 0, 1)
  n, h, w, c = images.shape
  cols = min(num_columns, n)
  rows = -(-n // cols)
  grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), background, np.float32)
  for i, image in enumerate(images):
    r, k = divmod(i, cols)
    grid[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = image
  return grid[..., 0] if c == 1 else grid


def sample_grid_figure(images, num_columns=8, title="", scale=0.6):
  """A figure showing images (N, H, W, C) in [-1, 1] as a grid (grey for C = 1)."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  grid = image_grid(images, num_columns)
  rows, cols = -(-len(images) // min(num_columns, len(images))), min(num_columns, len(images))
  fig = Figure(figsize=(max(2.0, scale * cols), max(2.0, scale * rows)))
  ax = fig.subplots()
  ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1,
            interpolation="nearest")
  ax.set_axis_off()
  if title:
    ax.set_title(title)
  return fig
