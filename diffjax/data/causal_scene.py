"""A simulated scene with a known causal mechanism: a blob whose brightness its size causes.

Factors of an 8x8 image (`FACTORS`), with the DAG size -> brightness and position a
second root (a non-descendant of both):

  size       s ~ U[0.7, 1.8]            (the blob's standard deviation, pixels)
  brightness b = 0.35 + 0.45 (s - 0.7) / 1.1 + 0.1 u,  u ~ U[-1, 1]
  position   c ~ U[2.0, 5.0]            (the blob's column centre, pixels)

  image = 2 b exp(-((r - 3.5)^2 + (col - c)^2) / (2 s^2)) - 1   in [-1, 1].

`scene_counterfactual` applies the true mechanism to an intervention with the factual
noise u, the ground truth of a counterfactual.
"""
import numpy as np

FACTORS = ("size", "brightness", "position")
EDGES = ("size->brightness",)
_SIZE, _POSITION = (0.7, 1.8), (2.0, 5.0)


def _brightness(size, u):
  return 0.35 + 0.45 * (size - _SIZE[0]) / (_SIZE[1] - _SIZE[0]) + 0.1 * u


def render_scene(factors):
  """(N, 3) factors (size, brightness, position) -> (N, 8, 8, 1) images in [-1, 1]."""
  factors = np.asarray(factors, np.float32)
  s, b, c = factors[:, 0, None, None], factors[:, 1, None, None], factors[:, 2, None, None]
  r, col = np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij")
  blob = np.exp(-((r - 3.5) ** 2 + (col - c) ** 2) / (2 * s ** 2))
  return (2 * b * blob - 1)[..., None].astype(np.float32)


def causal_scene(seed: int, n: int):
  """(images (N, 8, 8, 1), factors (N, 3), noise u (N,)) drawn from the scene's SCM."""
  rng = np.random.default_rng(seed)
  size = rng.uniform(*_SIZE, n)
  u = rng.uniform(-1, 1, n)
  factors = np.stack([size, _brightness(size, u), rng.uniform(*_POSITION, n)], -1)
  return render_scene(factors), factors.astype(np.float32), u.astype(np.float32)


def scene_counterfactual(factors, u, i: int, value):
  """The true counterfactual factors (N, 3) of factors (N, 3) with noise u (N,) under
  do(factor i = value): brightness follows a size intervention through its mechanism."""
  out = np.array(factors, np.float32)
  out[:, i] = value
  if i == 0:
    out[:, 1] = _brightness(out[:, 0], u)
  return out
