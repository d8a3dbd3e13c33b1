"""DDMI's variational autoencoder from pixel images to functions on [0, 1]^2.

DDMI (Park et al., ICLR 2024, Sec. 3.2, Eq. 4): an encoder maps a discretised signal
(here an image (H, W, 1) in [-1, 1]) to a Gaussian posterior over hierarchical positional
embeddings z (`diffjax.implicit.positional`); the decoder evaluates the function the
embedding represents at any coordinates p in [0, 1]^2,

  f_z(p) = MLP([read_embedding(z, p), fourier_features(p)]),

and is trained on the signal's values at the pixel centres and at random points, where
the signal is taken as the bilinear interpolation of its pixels (`target_values`), with
the VAE loss  E ||f_z(p) - x(p)||^2 + beta KL(q(z | x) || N(0, I)).

  autoencoder = FunctionAutoencoder(levels=((2, 8), (4, 4)))
  params = init_autoencoder(autoencoder, key, (8, 8, 1))
  mean, log_var = autoencoder.apply({"params": params}, images, method="encode")  # (B, L)
  values = render(autoencoder, params, mean, 16)                  # (B, 16, 16, 1)
"""
from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from diffjax.implicit.positional import (bilinear, fourier_features, grid_coordinates,
                                         latent_size, read_embedding)


class FunctionAutoencoder(nn.Module):
  """Encoder of images (B, H, W, 1) to embeddings (B, L) and decoder of an embedding at
  coordinates. levels: ((resolution, channels), ...) of the embedding grids."""
  levels: Sequence[Tuple[int, int]] = ((2, 8), (4, 4))
  width: int = 256
  decoder_width: int = 128
  decoder_depth: int = 3
  num_frequencies: int = 4

  def setup(self):
    size = latent_size(self.levels)
    self.encoder = [nn.Dense(self.width), nn.Dense(self.width), nn.Dense(2 * size)]
    self.decoder = ([nn.Dense(self.decoder_width) for _ in range(self.decoder_depth)]
                    + [nn.Dense(1)])

  def encode(self, images):
    """images (B, H, W, 1) -> posterior mean and log-variance, each (B, L)."""
    h = images.reshape(images.shape[0], -1)
    for layer in self.encoder[:-1]:
      h = nn.silu(layer(h))
    mean, log_var = jnp.split(self.encoder[-1](h), 2, -1)
    return mean, jnp.clip(log_var, -12.0, 6.0)

  def decode(self, z, coordinates):
    """One embedding z (L,) at coordinates (P, 2) in [0, 1]^2 -> values (P, 1)."""
    h = jnp.concatenate([read_embedding(z, self.levels, coordinates),
                         fourier_features(coordinates, self.num_frequencies)], -1)
    for layer in self.decoder[:-1]:
      h = nn.silu(layer(h))
    return self.decoder[-1](h)

  def __call__(self, images, coordinates):
    mean, _ = self.encode(images)
    return jax.vmap(lambda z: self.decode(z, coordinates))(mean)


def init_autoencoder(module: FunctionAutoencoder, key, image_shape) -> dict:
  """The autoencoder's parameters for images of image_shape (H, W, 1)."""
  return module.init(key, jnp.zeros((1, *image_shape)), jnp.zeros((1, 2)))["params"]


def decode_batch(module, params, z, coordinates):
  """Embeddings z (B, L) at shared coordinates (P, 2) -> (B, P, 1)."""
  return jax.vmap(lambda zi: module.apply({"params": params}, zi, coordinates,
                                          method="decode"))(z)


def render(module, params, z, resolution: int):
  """Embeddings z (B, L) rendered on the R x R pixel centres: (B, R, R, 1)."""
  values = decode_batch(module, params, z, grid_coordinates(resolution))
  return values.reshape(z.shape[0], resolution, resolution, 1)


def target_values(images, coordinates):
  """The signal of images (B, H, W, 1) at coordinates (P, 2): (B, P, 1), the bilinear
  interpolation of the pixels (exactly the pixel at a pixel centre)."""
  return jax.vmap(lambda image: bilinear(image, coordinates))(images)


def autoencoder_loss(module, params, key, images, num_random_points: int, beta: float):
  """DDMI's VAE loss (Eq. 4) on images (B, H, W, 1): the squared error of the decoded
  function at the H x W pixel centres and num_random_points uniform points of [0, 1]^2,
  plus beta times the KL of the posterior to N(0, I) per embedding value. Returns
  (loss, {"reconstruction", "kl"})."""
  k_points, k_z = jax.random.split(key)
  coordinates = jnp.concatenate([grid_coordinates(images.shape[1]),
                                 jax.random.uniform(k_points, (num_random_points, 2))])
  mean, log_var = module.apply({"params": params}, images, method="encode")
  z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(k_z, mean.shape)
  error = decode_batch(module, params, z, coordinates) - target_values(images, coordinates)
  reconstruction = jnp.mean(error ** 2)
  kl = 0.5 * jnp.mean(jnp.exp(log_var) + mean ** 2 - 1.0 - log_var)
  return reconstruction + beta * kl, {"reconstruction": reconstruction, "kl": kl}
