"""digits-C: the 8x8 digits under common corruptions at several severities, the test-time
shift of SDA's and DDA's studies.

In the manner of ImageNet-C ("Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", Hendrycks and Dietterich, ICLR 2019): each corruption is a
function of (key, images (N, 8, 8, 1) in [-1, 1], severity) with severities 1..5
growing in strength, scaled here to 8x8 images; severity 0 is the identity (the images
returned unchanged; tested):
  noise     additive Gaussian noise of std (0, 0.15, 0.3, 0.45, 0.6, 0.8)
  blur      Gaussian blur of std (0, 0.5, 0.7, 0.9, 1.1, 1.4) pixels (reflected edges)
  contrast  the deviation from each image's mean scaled by (1, 0.6, 0.45, 0.3, 0.2, 0.12)
  elastic   a smooth random displacement field of (0, 0.4, 0.6, 0.8, 1.0, 1.2) pixels
            (its std), bilinear resampling (Simard et al. 2003's elastic distortion)
Corrupted images are clipped to [-1, 1].
"""
import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.registry import Registry

SEVERITIES = (0, 1, 2, 3, 4, 5)
CORRUPTIONS = Registry("digits-C corruption")


def _gaussian_kernel(std, radius=3):
  offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  kernel = jnp.exp(-0.5 * (offsets / std) ** 2)
  return kernel / kernel.sum()


def _blur(images, std):
  """Separable Gaussian blur of (N, H, W, 1) images with reflected edges."""
  kernel = _gaussian_kernel(max(std, 1e-3))   # std 0: the kernel (0, .., 1, .., 0).
  radius = (kernel.shape[0] - 1) // 2
  padded = jnp.pad(images[..., 0], ((0, 0), (radius, radius), (radius, radius)),
                   mode="reflect")
  size = images.shape[1]
  rows = sum(kernel[k] * padded[:, k:k + size, :] for k in range(kernel.shape[0]))
  out = sum(kernel[k] * rows[:, :, k:k + size] for k in range(kernel.shape[0]))
  return out[..., None]


@CORRUPTIONS.register("noise")
def gaussian_noise(key, images, severity):
  std = (0.0, 0.15, 0.3, 0.45, 0.6, 0.8)[severity]
  return images + std * jax.random.normal(key, images.shape)


@CORRUPTIONS.register("blur")
def gaussian_blur(key, images, severity):
  del key
  return _blur(images, (0.0, 0.5, 0.7, 0.9, 1.1, 1.4)[severity])


@CORRUPTIONS.register("contrast")
def contrast(key, images, severity):
  del key
  factor = (1.0, 0.6, 0.45, 0.3, 0.2, 0.12)[severity]
  mean = jnp.mean(images, axis=(1, 2, 3), keepdims=True)
  return mean + factor * (images - mean)


@CORRUPTIONS.register("elastic")
def elastic(key, images, severity):
  """Each image resampled at x + d(x), d a blurred N(0, 1) field rescaled to std `alpha`."""
  alpha = (0.0, 0.4, 0.6, 0.8, 1.0, 1.2)[severity]
  n, size = images.shape[0], images.shape[1]
  field = jax.random.normal(key, (2, n, size, size, 1))
  field = jnp.stack([_blur(f, 1.0)[..., 0] for f in field])              # (2, N, H, W)
  field = alpha * field / jnp.std(field, axis=(2, 3), keepdims=True)
  grid = jnp.arange(size, dtype=jnp.float32)
  rows = jnp.clip(grid[None, :, None] + field[0], 0, size - 1)
  cols = jnp.clip(grid[None, None, :] + field[1], 0, size - 1)
  resample = lambda image, r, c: jax.scipy.ndimage.map_coordinates(image, [r, c], order=1)
  return jax.vmap(resample)(images[..., 0], rows, cols)[..., None]


def check_corruption(name, severity):
  """ConfigError (one line) for a corruption or severity outside the lists."""
  if name not in CORRUPTIONS:
    raise ConfigError(f"corruption {name!r} is not one of: {', '.join(CORRUPTIONS.names())}.")
  if isinstance(severity, bool) or severity not in SEVERITIES:
    raise ConfigError(f"corruption severity {severity!r} is not one of {SEVERITIES} "
                      "(0: the clean images).")


def corrupt(name, key, images, severity):
  """(N, 8, 8, 1) images under corruption `name` at `severity` (module docstring)."""
  check_corruption(name, severity)
  return jnp.clip(CORRUPTIONS.get(name)(key, jnp.asarray(images, jnp.float32), severity),
                  -1.0, 1.0)
