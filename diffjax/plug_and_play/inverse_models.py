"""Inverse models for plug-and-play conditioning: known degradations of images and a small
network that learns one from example pairs.

"Steered Diffusion" (Nair et al., ICCV 2023, Sec. 3) calls any differentiable map f from an
image to the condition space an inverse model: a known degradation (masking,
downsampling, channel mixing) or a pretrained network. Here f is either the degradation
itself (`DEGRADATIONS`: its operator and the pixels a restoration is scored on) or
`LearnedInverseModel`, a two-layer perceptron fitted to pairs (x, A(x)) of training
images, the "learned inverse model" that stands in for a pretrained network in the digits
setting (`diffjax.guidance.steered` steers with either).

Images are (B, H, W, C) in [-1, 1]; DEGRADATIONS.get(name).operator(shape (H, W, C)) -> A
with A(x (B, H, W, C)) -> (B, ...).
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


class Degradation(NamedTuple):
  """operator(shape (H, W, C), factor) -> A; scored(shape) -> (H, W, C) weights of the
  pixels a restoration is scored on (the hidden ones; every pixel for super-resolution);
  as_image(y, shape) -> the observation shown as an image (B, H, W, C) (nearest
  upsampling; the masked image)."""
  operator: Callable
  scored: Callable
  as_image: Callable


# name -> Degradation; `factor` is super-resolution's downsampling factor.
DEGRADATIONS = Registry("degradation")
DEGRADATIONS.register("super_resolution", Degradation(
    _super_resolution, lambda shape: np.ones(shape, np.float32), _upsample))
DEGRADATIONS.register("inpainting", Degradation(
    _inpainting, lambda shape: 1.0 - inpainting_mask("centre", shape),
    lambda y, shape: np.asarray(y)))


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
