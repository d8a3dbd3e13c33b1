"""Image restoration studies: masks of hidden regions, PSNR on the hidden region, and the
nearest-neighbour baselines a guided restoration is judged against.

Images are (N, H, W, C) arrays in [-1, 1]; a mask is (H, W, C) (or broadcastable to it)
with 1 on observed pixels and 0 on hidden ones. The operator that observes them is
`diffjax.guidance.inpainting(mask)`.
"""
import numpy as np

from diffjax.registry import Registry


def _right_half(mask):
  mask[:, mask.shape[1] // 2:] = 0.0


def _centre(mask):
  h, w = mask.shape[:2]
  mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 0.0


# name -> hide(mask): zeroes the hidden region of an all-ones (H, W, C) mask in place.
INPAINTING_MASKS = Registry("inpainting mask")
INPAINTING_MASKS.register("right_half", _right_half)
INPAINTING_MASKS.register("centre", _centre)


def inpainting_mask(name: str, shape) -> np.ndarray:
  """The (H, W, C) float32 mask `name` (`INPAINTING_MASKS`): 1 observed, 0 hidden."""
  mask = np.ones(shape, np.float32)
  INPAINTING_MASKS.get(name)(mask)
  return mask


def psnr(restored, truth, hole):
  """PSNR (dB) of `restored` against `truth` (N, H, W, C) on the hidden pixels (`hole`:
  1 where hidden), per image, for images in [-1, 1] (peak-to-peak 2): (N,)."""
  err = np.sum(((restored - truth) ** 2) * hole, axis=(1, 2, 3)) / np.sum(hole)
  return 10 * np.log10(4.0 / np.maximum(err, 1e-12))


def nearest_neighbour_fill(observed, mask, train):
  """The training image closest on the observed pixels, pasted into the hole:
  observed (N, H, W, C), train (M, H, W, C) -> (N, H, W, C)."""
  d = np.sum(((observed[:, None] - train[None]) * mask) ** 2, axis=(2, 3, 4))
  return observed * mask + train[np.argmin(d, 1)] * (1 - mask)


def nearest_neighbour_accuracy(samples, labels, train, train_labels) -> float:
  """Accuracy of the 1-nearest-neighbour classifier in pixel space: samples (N, ...) with
  their intended labels (N,), against training images (M, ...) and labels (M,)."""
  flat = lambda a: np.asarray(a).reshape(len(a), -1)
  s, r = flat(samples), flat(train)
  d = np.sum(s ** 2, 1)[:, None] - 2 * s @ r.T + np.sum(r ** 2, 1)[None]
  return float(np.mean(np.asarray(train_labels)[np.argmin(d, 1)] == np.asarray(labels)))
