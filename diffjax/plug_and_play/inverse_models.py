"""Inverse models for plug-and-play conditioning: known degradations of images and a small
network that learns one from example pairs.

"Steered Diffusion" (Nair et al., ICCV 2023, Sec. 3) calls any differentiable map f from an
image to the condition space an inverse model: a known degradation (masking,
downsampling, channel mixing) or a pretrained network. Here f is either the degradation
itself (`DEGRADATIONS`: its operator and the pixels a restoration is scored on) or `LearnedInverseModel`, a two-layer perceptron fitted to pairs
(x, A(x)) of training images, the "learned inverse model" that stands in for a pretrained
network in the digits setting (`diffjax.guidance.steered` steers with either).

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


def _super_resolution(shape):
  h, w, _ = shape
  if h % 2 or w % 2:
    raise ConfigError(f"2x super-resolution needs an even image size; got {tuple(shape)}.")
  return average_pool(2)


def _inpainting(shape):
  mask = jnp.asarray(inpainting_mask("centre", shape))[None]
  return lambda x: x * mask


class Degradation(NamedTuple):
  """operator(shape (H, W, C)) -> A; scored(shape) -> (H, W, C) weights of the pixels a
  restoration is scored on (the hidden ones; every pixel for super-resolution)."""
  operator: Callable
  scored: Callable


DEGRADATIONS = Registry("degradation")
DEGRADATIONS.register("super_resolution", Degradation(
    _super_resolution, lambda shape: np.ones(shape, np.float32)))
DEGRADATIONS.register("inpainting", Degradation(
    _inpainting, lambda shape: 1.0 - inpainting_mask("centre", shape)))


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
