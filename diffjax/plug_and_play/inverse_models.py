"""Inverse models for plug-and-play conditioning: known degradations of images and a small
network that learns one from example pairs.

"Steered Diffusion" (Nair et al., ICCV 2023, Sec. 3) calls any differentiable map f from an
image to the condition space an inverse model: a known degradation (masking,
downsampling, channel mixing) or a pretrained network. Here f is either the degradation
itself (`DEGRADATIONS`: its operator and the pixels a restoration is scored on) or
`LearnedInverseModel`, a two-layer perceptron fitted to pairs (x, A(x)) of training
images, the "learned inverse model" that stands in for a pretrained network in the digits
setting (`diffjax.guidance.steered` steers with either).

Channel mixing, the paper's colourisation task, needs images with colour channels; the
digits have one. A degradation with `views` > 1 therefore acts on stacked views: `views`
independent samples of a one-channel prior are the channels of one image (`stack_views`;
three digits as the R, G and B of a colour image), whose prior is the product of the
one-channel priors. `channel_mixing` observes that image's luma (ITU-R BT.601 weights),
so restoring it is colourisation: three channels from their one weighted sum.

Images are (B, H, W, C) in [-1, 1]; DEGRADATIONS.get(name).operator(shape (H, W, C)) -> A
with A(x (B, H, W, C)) -> (B, ...), where shape is the degradation's image shape
(`Degradation.image_shape` of the prior's).
"""
from typing import Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.registry import Registry
from diffjax.restoration import inpainting_mask


def average_pool(factor):
  """A x = the mean of each factor x factor block of images (B, H, W, C) (H, W divisible
  by factor): super-resolution's low-resolution observation."""
  def apply(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
  return apply


def _super_resolution(shape, factor=2):
  h, w, _ = shape
  if not (isinstance(factor, int) and factor >= 1 and h % factor == 0 and w % factor == 0):
    raise ConfigError(f"Super-resolution by factor {factor!r} needs an integer factor "
                      f"that divides the image size {h}x{w}; valid: "
                      f"{[f for f in range(1, min(h, w) + 1) if h % f == 0 and w % f == 0]}.")
  return average_pool(factor)


def _upsample(y, shape):
  factor = shape[0] // y.shape[1]
  return np.repeat(np.repeat(np.asarray(y), factor, 1), factor, 2)


def _inpainting(shape, factor=2):
  del factor
  mask = jnp.asarray(inpainting_mask("centre", shape))[None]
  return lambda x: x * mask


# ITU-R BT.601 luma weights of (R, G, B): the grey image colourisation starts from.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def stack_views(x, views):
  """(B * views, H, W, C) -> (B, H, W, views * C): each run of `views` consecutive images
  becomes the channels of one image (views = 1: x itself)."""
  n, h, w, c = x.shape
  if n % views:
    raise ConfigError(f"{n} images do not stack into images of {views} views each.")
  x = x.reshape(n // views, views, h, w, c)
  return jnp.moveaxis(x, 1, 3).reshape(n // views, h, w, views * c)


def unstack_views(x, views):
  """The inverse of `stack_views`: (B, H, W, views * C) -> (B * views, H, W, C)."""
  b, h, w, c = x.shape
  x = jnp.moveaxis(x.reshape(b, h, w, views, c // views), 3, 1)
  return x.reshape(b * views, h, w, c // views)


def channel_mix(weights):
  """A x = sum_c w_c x[..., c] of images (B, H, W, C = len(weights)) -> (B, H, W, 1)."""
  w = jnp.asarray(weights, jnp.float32)
  return lambda x: jnp.einsum("bhwc,c->bhw", x, w)[..., None]


def _channel_mixing(shape, factor=2):
  del factor
  if shape[-1] != len(LUMA_WEIGHTS):
    raise ConfigError(f"Channel mixing observes the luma of {len(LUMA_WEIGHTS)}-channel "
                      f"images; got images of shape {tuple(shape)}.")
  return channel_mix(LUMA_WEIGHTS)


class Degradation(NamedTuple):
  """operator(shape (H, W, C), factor) -> A; scored(shape) -> (H, W, C) weights of the
  pixels a restoration is scored on (the hidden ones; every pixel for super-resolution);
  as_image(y, shape) -> the observation shown as an image (B, H, W, C) (nearest
  upsampling; the masked image; the grey image in every channel); views: prior samples
  stacked as the channels of one image (module docstring)."""
  operator: Callable
  scored: Callable
  as_image: Callable
  views: int = 1

  def image_shape(self, shape):
    """The shape (H, W, views * C) of the images degraded, for a prior of `shape`."""
    return tuple(shape[:-1]) + (shape[-1] * self.views,)


# name -> Degradation; `factor` is super-resolution's downsampling factor.
DEGRADATIONS = Registry("degradation")
DEGRADATIONS.register("super_resolution", Degradation(
    _super_resolution, lambda shape: np.ones(shape, np.float32), _upsample))
DEGRADATIONS.register("inpainting", Degradation(
    _inpainting, lambda shape: 1.0 - inpainting_mask("centre", shape),
    lambda y, shape: np.asarray(y)))
DEGRADATIONS.register("channel_mixing", Degradation(
    _channel_mixing, lambda shape: np.ones(shape, np.float32),
    lambda y, shape: np.repeat(np.asarray(y), shape[-1], -1), views=len(LUMA_WEIGHTS)))


class LearnedInverseModel(nn.Module):
  """A learned f: images (B, H, W, C) -> observations (B, *out_shape), a perceptron with
  one hidden layer (residual-free: it has to learn the degradation from pairs)."""
  out_shape: tuple
  hidden_dim: int = 256

  @nn.compact
  def __call__(self, x):
    h = nn.gelu(nn.Dense(self.hidden_dim)(x.reshape(x.shape[0], -1)))
    out = nn.Dense(int(np.prod(self.out_shape)))(h)
    return out.reshape((x.shape[0],) + tuple(self.out_shape))


def inverse_model_fit_loss(apply, params, x, degradation):
  """Mean squared error of the learned f against the degradation A on images x."""
  return jnp.mean((apply(params, x) - degradation(x)) ** 2)
