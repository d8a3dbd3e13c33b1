"""scikit-learn's bundled 8x8 handwritten digits: an offline image dataset for demos and tests.

1797 grey images of the digits 0-9 (the UCI "Optical Recognition of Handwritten Digits"
test set) with pixel levels 0..16, so `num_levels` = 17 in the dequantisation convention of
diffjax.data.images. The split is fixed: a seeded permutation puts 300 images in "test" and
the other 1497 in "train" ("all" has every image in the original order).
"""
import numpy as np

from diffjax.data.images import IMAGE_DATASETS, ArrayRecords, ImageSource, dequantize
from diffjax.errors import ConfigError

DIGITS_NUM_LEVELS = 17
DIGITS_NUM_TEST = 300
_SPLITS = ("train", "test", "all")


def _load_sklearn_digits():
  # Imported here, not at the top: scikit-learn takes about 1 s to import.
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  data = load_digits()
  return data.images.astype(np.uint8), data.target.astype(np.int32)


def resize_digits(images, image_size=8, resize="nearest"):
  """(N, 8, 8) levels -> (N, S, S, 1): nearest-neighbour upsampling by S / 8, or zero
  (background) padding to S x S centred ("pad")."""
  if resize == "nearest":
    if image_size % 8:
      raise ValueError(f"Nearest upsampling needs image_size a multiple of 8; got {image_size}.")
    k = image_size // 8
    images = np.repeat(np.repeat(images, k, axis=1), k, axis=2)
  elif resize == "pad":
    if image_size < 8:
      raise ValueError(f"Cannot pad 8x8 digits to {image_size}x{image_size}.")
    before = (image_size - 8) // 2
    after = image_size - 8 - before
    images = np.pad(images, ((0, 0), (before, after), (before, after)))
  else:
    raise ValueError(f"Unknown resize {resize!r}; valid: nearest, pad.")
  return images[..., None]


def digits_arrays(split="train", image_size=8, resize="nearest"):
  """(images (N, S, S, 1) uint8 levels in [0, 16], labels (N,) int32) of a split."""
  if split not in _SPLITS:
    raise ValueError(f"Unknown digits split {split!r}; valid: {', '.join(_SPLITS)}.")
  images, labels = _load_sklearn_digits()
  if split != "all":
    order = np.random.default_rng(0).permutation(len(images))
    keep = order[:DIGITS_NUM_TEST] if split == "test" else order[DIGITS_NUM_TEST:]
    images, labels = images[keep], labels[keep]
  return resize_digits(images, image_size, resize), labels


@IMAGE_DATASETS.register("digits")
def digits_source(split="train", *, image_size=None, resize="nearest",
                  data_dir=None) -> ImageSource:
  """The digits as an ImageSource of (image_size, image_size, 1) images (default 8),
  10 classes; `data_dir` is ignored (the data ship with scikit-learn)."""
  del data_dir
  image_size = image_size or 8
  if image_size % 8 and resize == "nearest":
    raise ConfigError(f"data.image_size={image_size}: the 8x8 digits are upsampled by "
                      "whole pixels, so use a multiple of 8.")
  images, labels = digits_arrays(split, image_size, resize)
  return ImageSource(ArrayRecords(images, labels), images.shape[1:], 10, DIGITS_NUM_LEVELS,
                     "digits")


def digits_bin_centres(split="train", classes=None, limit=None, flat=False):
  """The digits of `split` as float32 bin centres in [-1, 1] (`dequantize`), optionally
  only `classes` and the first `limit`: (images (N, 8, 8, 1), or (N, 64) if `flat`;
  labels (N,))."""
  images, labels = digits_arrays(split)
  if classes is not None:
    keep = np.isin(labels, classes)
    images, labels = images[keep], labels[keep]
  images = np.asarray(dequantize(images[:limit], DIGITS_NUM_LEVELS), np.float32)
  images = images.reshape(len(images), -1) if flat else images
  return images, labels[:limit]
