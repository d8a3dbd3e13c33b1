"""Target domains for few-shot adaptation of a digits model: the 8x8 digits drawn in a new
style (`TARGET_STYLES`), a few-shot training set and a held-out target set.

  shots, labels = few_shot_set("thick", num_shots=10, seed=0)    # (10, 8, 8, 1), (10,)
  held_out, held_labels = styled_digits("thick", "test")         # (300, 8, 8, 1), (300,)

Images follow the diffjax convention, (N, 8, 8, 1) floats in [-1, 1] with the background
at -1 (the digits' bin centres, `diffjax.data.digits.digits_bin_centres`). A style is a
deterministic map of such images:
  original  the digits as they are (the source domain);
  thick     the stroke dilated by a plus-shaped 3x3 structuring element (each pixel takes
            the maximum of itself and its four neighbours): bolder digits;
  inverted  -x: light digits on a dark background become dark on light;
  rotated   a quarter turn counter-clockwise.
The few-shot set is drawn from the digits "train" split and the held-out set is the
"test" split, so the two never share an image.
"""
import numpy as np

from diffjax.data.digits import digits_bin_centres
from diffjax.errors import ConfigError
from diffjax.registry import Registry

TARGET_STYLES = Registry("few-shot target style")


@TARGET_STYLES.register("original")
def original(images):
  """(N, H, W, C) -> the images unchanged."""
  return np.asarray(images, np.float32)


@TARGET_STYLES.register("thick")
def thick(images):
  """(N, H, W, C) -> the plus-shaped grey dilation (max of a pixel and its 4 neighbours)."""
  images = np.asarray(images, np.float32)
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-1.0)
  centre = padded[:, 1:-1, 1:-1]
  return np.maximum.reduce([centre, padded[:, :-2, 1:-1], padded[:, 2:, 1:-1],
                            padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]])


@TARGET_STYLES.register("inverted")
def inverted(images):
  """(N, H, W, C) -> -images (background and ink swap)."""
  return -np.asarray(images, np.float32)


@TARGET_STYLES.register("rotated")
def rotated(images):
  """(N, H, W, C) -> the images turned a quarter turn counter-clockwise."""
  return np.ascontiguousarray(np.rot90(np.asarray(images, np.float32), 1, axes=(1, 2)))


def styled_digits(style: str, split: str = "test"):
  """(images (N, 8, 8, 1) in `style`, labels (N,)) of a digits split."""
  images, labels = digits_bin_centres(split)
  return TARGET_STYLES.get(style)(images), labels


def few_shot_set(style: str, num_shots: int, seed: int = 0):
  """`num_shots` training digits in `style`, classes 0, 1, ..., 9, 0, ... in turn (each
  the next unused digit of its class in a seeded shuffle of the "train" split):
  (images (num_shots, 8, 8, 1), labels (num_shots,))."""
  images, labels = digits_bin_centres("train")
  per_class = np.bincount(labels, minlength=10).min()
  if not 1 <= num_shots <= 10 * per_class:
    raise ConfigError(f"target.num_shots={num_shots} must be in 1..{10 * per_class} (the "
                      "train split's digits, one class after another).")
  order = np.random.default_rng(seed).permutation(len(images))
  queues = [[i for i in order if labels[i] == c] for c in range(10)]
  chosen = [queues[k % 10][k // 10] for k in range(num_shots)]
  return TARGET_STYLES.get(style)(images[chosen]), labels[chosen]


def concept_images(style: str, digit: int, num_images: int, seed: int = 0):
  """(num_images, 8, 8, 1): the first `num_images` training digits of class `digit` in a
  seeded shuffle, drawn in `style` (a ProSpect concept: one digit in one style)."""
  images, labels = digits_bin_centres("train")
  order = np.random.default_rng(seed).permutation(len(images))
  chosen = [i for i in order if labels[i] == digit][:num_images]
  if not 0 <= digit <= 9 or len(chosen) < num_images:
    raise ConfigError(f"A concept ({style!r}, {digit}) of {num_images} images: the digit must "
                      f"be in 0..9 with that many training images.")
  return TARGET_STYLES.get(style)(images[chosen])


def ink_fraction(images) -> np.ndarray:
  """(N,) fraction of pixels brighter than mid-grey (x > 0): the stroke mass of a digit,
  higher for thick strokes."""
  x = np.asarray(images)
  return (x > 0).reshape(len(x), -1).mean(1)
