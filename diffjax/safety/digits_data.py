"""On-device draws of the 8x8 digits by class, for the safety studies' fine-tuning losses
and adversarial targets.

  draw = digits_sampler(classes=(0, 1, 2))     # None: all ten classes
  x1, labels = draw(key, 128)                  # (128, 8, 8, 1) in [-1, 1), (128,) int32

Images are freshly dequantised (uniform noise inside each of the 17 grey levels), as the
digits runs are trained (`diffjax.data.ImageStream(dequantize=True)`).
"""
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.errors import ConfigError

DIGITS_NUM_CLASSES = 10


def check_digit_class(value, key: str) -> int:
  """A class id in [0, 10), or a ConfigError naming `key`."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
      0 <= value < DIGITS_NUM_CLASSES):
    raise ConfigError(f"{key}={value!r} is not a digits class: give an integer in "
                      f"[0, {DIGITS_NUM_CLASSES - 1}].")
  return int(value)


def digits_sampler(classes: Optional[Sequence[int]] = None, split: str = "train"):
  """draw(key, n) -> (x1 (n, 8, 8, 1) float32 in [-1, 1), labels (n,) int32): uniform
  draws (with replacement) of the split's images of `classes` (None: all)."""
  images, labels = digits_arrays(split)
  if classes is not None:
    keep = np.isin(labels, np.asarray(classes))
    images, labels = images[keep], labels[keep]
  images = jnp.asarray(images, jnp.float32)
  labels = jnp.asarray(labels, jnp.int32)

  def draw(key, n):
    k_index, k_noise = jax.random.split(key)
    index = jax.random.randint(k_index, (n,), 0, images.shape[0])
    noise = jax.random.uniform(k_noise, (n, *images.shape[1:]))
    return 2.0 * (images[index] + noise) / DIGITS_NUM_LEVELS - 1.0, labels[index]

  return draw
