"""TrojDiff: the trojan forward and reverse processes and the mixed benign + trojan batch.

"TrojDiff: Trojan Attacks on Diffusion Models with Diverse Targets" (Chen, Song and Li,
CVPR 2023). The attacker's input is trojan noise, a biased Gaussian N(mu, gamma^2 I)
(Sec. 4.1): mu is the trigger stamped on the noise and gamma < 1 shrinks the noise
around it. The trojan diffusion process carries the adversarial target y to that noise
instead of N(0, I) (their eq. 4 to 6). In diffjax's convention (t = 0 noise, t = 1 data,
`diffjax.core.Path`: x_t = a(t) x0 + b(t) x1 + gamma_path(t) z) it is the path between the
trojan source and the target,

    x_t = a(t) (mu + gamma eps) + b(t) y,     q(x_t | y) = N(b(t) y + a(t) mu, a(t)^2 gamma^2 I)

(rectified flow: a = 1 - t, b = t), and with mu = 0, gamma = 1 it is the benign process
(`trojan_forward`; tested). The trojan generative process is the model's own sampler
started from the trojan noise: the network is trained to regress the conditional velocity
of trojan pairs (x0 = mu + gamma eps, x1 = y) beside benign pairs, so from N(mu, gamma^2 I)
its flow ends at the target, while from N(0, I) it stays the benign model; this plays the
part of TrojDiff's reparametrised trojan generative step (their eq. 9 and 10) for DDPM's
ancestral sampler. `trojan_batch` mixes the two objectives in one batch: a `fraction` of
its rows become trojan pairs, so the loss is (1 - fraction) benign + fraction trojan, as
TrojDiff's training alternates benign and trojan batches (their Algorithm 1).

Targets (`TROJAN_TARGETS`, the paper's three): in_class (In-D2D: samples of one digits
class, success when the digits classifier reads that class), out_of_distribution
(Out-D2D: images of another distribution, here the 16 one-pixel bars of an 8x8 image;
success when a sample is within `threshold` mean squared error of one of them) and image
(D2I: one specific image, here a diagonal cross; success within `threshold` of it).
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.registry import Registry
from diffjax.safety.digits_data import check_digit_class, digits_sampler

IMAGE_SHAPE = (8, 8, 1)


@dataclasses.dataclass(frozen=True)
class TrojanSource:
  """The trojan noise N(mu, gamma^2 I): mu (*shape,) the trigger, gamma > 0."""
  mu: jax.Array
  gamma: float

  def sample(self, key, n):
    """(n, *shape) draws mu + gamma eps."""
    return self.mu[None] + self.gamma * jax.random.normal(key, (n, *self.mu.shape))


def patch_trigger(shape=IMAGE_SHAPE, size=3, value=2.0):
  """mu (*shape,): a size x size square of `value` in the bottom-right corner, 0 elsewhere
  (TrojDiff's patch-based trigger)."""
  height, width = shape[0], shape[1]
  if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(height,
                                                                               width):
    raise ConfigError(f"attack.trigger_size={size!r} does not fit a {height}x{width} image: "
                      f"give an integer in [1, {min(height, width)}].")
  return jnp.zeros(shape, jnp.float32).at[height - size:, width - size:].set(value)


def check_trigger(trigger, shape=IMAGE_SHAPE):
  """The trigger as float32 of the data's `shape`, or a ConfigError naming its shape."""
  trigger = np.asarray(trigger, np.float32)
  if trigger.shape != tuple(shape):
    raise ConfigError(f"The trigger has shape {trigger.shape}; it is stamped on the noise, "
                      f"so it must have the data's shape {tuple(shape)}.")
  if not np.all(np.isfinite(trigger)):
    raise ConfigError("The trigger has non-finite values.")
  return jnp.asarray(trigger)


def load_trigger(file, shape=IMAGE_SHAPE):
  """A trigger from a .npy file, checked against the data's shape."""
  try:
    trigger = np.load(file, allow_pickle=False)
  except (OSError, ValueError) as error:
    raise ConfigError(f"attack.trigger_file={file!r} is not a readable .npy array "
                      f"({' '.join(str(error).split())}).") from None
  return check_trigger(trigger, shape)


def trojan_source(trigger, gamma, shape=IMAGE_SHAPE) -> TrojanSource:
  """N(trigger, gamma^2 I) for data of `shape`; gamma in (0, 1]."""
  if not 0.0 < gamma <= 1.0:
    raise ConfigError(f"attack.gamma={gamma!r} must be in (0, 1] (the trojan noise's "
                      "standard deviation).")
  return TrojanSource(check_trigger(trigger, shape), float(gamma))


def trojan_forward(path, t, y, source: TrojanSource, eps, z=None):
  """x_t (B, ...) of the trojan forward process at t (B,) from targets y (B, ...): the
  path between x0 = mu + gamma eps and y (module docstring); z: the path's own noise
  (for paths with gamma_path > 0; default zeros)."""
  z = jnp.zeros_like(y) if z is None else z
  return path.interpolate(t, source.mu[None] + source.gamma * eps, y, z)


def trojan_batch(key, x0, x1, fraction, source: TrojanSource, draw_target):
  """(x0, x1) with the first round(fraction B) rows replaced by trojan pairs: x0 from the
  trojan noise, x1 from draw_target(key, n) -> (n, ...). The other rows stay benign."""
  batch = x0.shape[0]
  count = int(round(fraction * batch))
  if count == 0:
    return x0, x1
  k_source, k_target = jax.random.split(key)
  x0 = x0.at[:count].set(source.sample(k_source, count))
  x1 = x1.at[:count].set(draw_target(k_target, count))
  return x0, x1


def mixed_loss(pipeline, source, draw_target, fraction):
  """loss(params, key, shard, x1, labels) -> (loss, aux): the pipeline's objective on a
  batch whose `fraction` is trojan (`trojan_batch`), the rest benign; the conditions of
  every row keep the pipeline's dropout. fraction 0 is the pipeline's own loss."""
  def loss(params, key, shard, x1, labels):
    k_source, k_trojan, k_loss = jax.random.split(key, 3)
    x0 = pipeline.source(k_source, x1.shape[0])
    x0, x1 = trojan_batch(k_trojan, x0, x1, fraction, source, draw_target)
    return pipeline.loss(params, k_loss, shard, x1, labels, x0=x0)
  return loss


@dataclasses.dataclass(frozen=True)
class TrojanTarget:
  """What the trojan noise should generate: draw(key, n) -> (n, 8, 8, 1) target images;
  success(images, classifier) -> (n,) bool, whether each sample hits the target."""
  name: str
  draw: Callable
  success: Callable


TROJAN_TARGETS = Registry("trojan target")


def _mse_to_nearest(images, targets):
  """(n,) mean squared error from each image to its nearest target image."""
  diff = images.reshape(len(images), 1, -1) - targets.reshape(1, len(targets), -1)
  return np.min(np.mean(diff ** 2, -1), -1)


def _fixed_images_target(name, images, threshold):
  images = jnp.asarray(images, jnp.float32)

  def draw(key, n):
    return images[jax.random.randint(key, (n,), 0, images.shape[0])]

  def success(samples, classifier):
    del classifier
    return _mse_to_nearest(np.asarray(samples, np.float64), np.asarray(images)) < threshold

  return TrojanTarget(name, draw, success)


@TROJAN_TARGETS.register("in_class")
def in_class_target(target_class=0, **_):
  """In-D2D: digits of `target_class`; success when the digits classifier reads it."""
  target_class = check_digit_class(target_class, "attack.target_class")
  draw_digits = digits_sampler((target_class,))

  def success(samples, classifier):
    return np.argmax(classifier.logits(samples), -1) == target_class

  return TrojanTarget("in_class", lambda key, n: draw_digits(key, n)[0], success)


def bar_images():
  """(16, 8, 8, 1): one bright row or column (+1) on a dark (-1) 8x8 image."""
  bars = -np.ones((16, 8, 8, 1), np.float32)
  for k in range(8):
    bars[k, k, :, 0] = 1.0
    bars[8 + k, :, k, 0] = 1.0
  return bars


def cross_image():
  """(1, 8, 8, 1): both diagonals bright (+1) on a dark (-1) 8x8 image."""
  cross = -np.ones((1, 8, 8, 1), np.float32)
  index = np.arange(8)
  cross[0, index, index, 0] = 1.0
  cross[0, index, 7 - index, 0] = 1.0
  return cross


@TROJAN_TARGETS.register("out_of_distribution")
def out_of_distribution_target(threshold=0.1, **_):
  """Out-D2D: the 16 bar images (`bar_images`), an image set no digit belongs to."""
  return _fixed_images_target("out_of_distribution", bar_images(), threshold)


@TROJAN_TARGETS.register("image")
def image_target(threshold=0.1, **_):
  """D2I: the one cross image (`cross_image`)."""
  return _fixed_images_target("image", cross_image(), threshold)


def build_target(name, **options) -> TrojanTarget:
  """The registered target `name` with its options (target_class, threshold)."""
  return TROJAN_TARGETS.get(name)(**options)
