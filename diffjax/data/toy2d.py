"""Standard 2D toy distributions as pure JAX samplers.

Every sampler has the signature `sample(key, num_samples) -> (num_samples, 2)` float32
array, runs under `jit`, and is registered in `TOY_2D` by the name a config uses.
Scales follow the conventions of the flow-matching 2D benchmarks (Tong et al.,
"Improving and generalizing flow-based generative models with minibatch optimal
transport"): 8 gaussians on a circle of radius 5, moons stretched by 3 and shifted by -1.
"""
import functools
import math

import jax
import jax.numpy as jnp

from diffjax.data.gaussian_mixture import ring_mixture
from diffjax.registry import Registry

TOY_2D = Registry("2D toy distribution")


def _polar(radius, angle):
  return jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)], axis=-1)


@TOY_2D.register("standard_normal")
def standard_normal(key, num_samples, dim=2):
  """N(0, I) in `dim` dimensions (default 2)."""
  return jax.random.normal(key, (num_samples, dim))


@TOY_2D.register("eight_gaussians")
def eight_gaussians(key, num_samples, radius=5.0, std=0.1 ** 0.25):
  """Eight isotropic Gaussians with centres evenly spaced on a circle."""
  k_mode, k_noise = jax.random.split(key)
  mode = jax.random.randint(k_mode, (num_samples,), 0, 8)
  centres = _polar(radius, mode * (2 * math.pi / 8))
  return centres + std * jax.random.normal(k_noise, (num_samples, 2))


@TOY_2D.register("moons")
def moons(key, num_samples, noise=0.2, scale=3.0, shift=-1.0, noise_type="gaussian"):
  """Two interleaving half circles (scikit-learn's `make_moons` geometry).

  noise_type "gaussian" adds isotropic N(0, noise^2); "torchdyn" adds one U[0, noise) shift
  to both coordinates, as torchdyn's `generate_moons` (TorchCFM's `sample_moons`) does.
  """
  k_side, k_angle, k_noise = jax.random.split(key, 3)
  upper = jax.random.bernoulli(k_side, 0.5, (num_samples,))
  angle = jax.random.uniform(k_angle, (num_samples,), maxval=math.pi)
  outer = jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
  inner = jnp.stack([1 - jnp.cos(angle), 0.5 - jnp.sin(angle)], -1)
  x = jnp.where(upper[:, None], outer, inner)
  if noise_type == "gaussian":
    x = x + noise * jax.random.normal(k_noise, (num_samples, 2))
  elif noise_type == "torchdyn":
    x = x + noise * jax.random.uniform(k_noise, (num_samples, 1))
  else:
    raise ValueError(f"Unknown noise_type {noise_type!r}; valid: gaussian, torchdyn.")
  return scale * x + shift


@TOY_2D.register("checkerboard")
def checkerboard(key, num_samples, num_squares=4, size=4.0):
  """Uniform on the dark squares of a `num_squares` x `num_squares` board of side `size`."""
  k_cell, k_pos = jax.random.split(key)
  # Dark cells are those with even (row + column).
  cells = jnp.array([(r, c) for r in range(num_squares) for c in range(num_squares)
                     if (r + c) % 2 == 0], dtype=jnp.float32)
  idx = jax.random.randint(k_cell, (num_samples,), 0, cells.shape[0])
  offset = jax.random.uniform(k_pos, (num_samples, 2))
  cell = size / num_squares
  return (cells[idx] + offset) * cell - size / 2


@TOY_2D.register("swiss_roll")
def swiss_roll(key, num_samples, noise=0.25, scale=0.5):
  """The 2D Swiss roll: angle t in [1.5 pi, 4.5 pi], radius t."""
  k_t, k_noise = jax.random.split(key)
  t = 1.5 * math.pi * (1 + 2 * jax.random.uniform(k_t, (num_samples,)))
  x = _polar(t, t)
  return scale * (x + noise * jax.random.normal(k_noise, (num_samples, 2)))


@TOY_2D.register("spirals")
def spirals(key, num_samples, noise=0.1, turns=1.5, radius=4.0):
  """Two interleaved Archimedean spirals, each making `turns` revolutions."""
  k_arm, k_r, k_noise = jax.random.split(key, 3)
  arm = jax.random.bernoulli(k_arm, 0.5, (num_samples,))
  r = jnp.sqrt(jax.random.uniform(k_r, (num_samples,)))
  angle = 2 * math.pi * turns * r + jnp.where(arm, math.pi, 0.0)
  x = _polar(radius * r, angle)
  return x + noise * jax.random.normal(k_noise, (num_samples, 2))


@TOY_2D.register("circles")
def circles(key, num_samples, radii=(4.0, 2.0), noise=0.08):
  """Two concentric circles (scikit-learn's `make_circles` geometry, scaled)."""
  k_ring, k_angle, k_noise = jax.random.split(key, 3)
  ring = jax.random.bernoulli(k_ring, 0.5, (num_samples,))
  radius = jnp.where(ring, radii[0], radii[1])
  angle = jax.random.uniform(k_angle, (num_samples,), maxval=2 * math.pi)
  return _polar(radius, angle) + noise * jax.random.normal(k_noise, (num_samples, 2))


@TOY_2D.register("s_curve")
def s_curve(key, num_samples, noise=0.075, scale=1.5):
  """The 2D projection of scikit-learn's S-curve: an 'S' traced by t in [-3pi/2, 3pi/2].

  Defaults follow TorchCFM's 2D benchmark (`make_s_curve(noise=0.05)`, coordinates 0 and 2,
  times 1.5: scale 1.5 and noise 1.5 * 0.05).
  """
  k_t, k_noise = jax.random.split(key)
  t = 3 * math.pi * (jax.random.uniform(k_t, (num_samples,)) - 0.5)
  x = jnp.stack([jnp.sin(t), jnp.sign(t) * (jnp.cos(t) - 1)], -1)
  return scale * x + noise * jax.random.normal(k_noise, (num_samples, 2))


@TOY_2D.register("ring_mixture")
def ring_mixture_sampler(key, num_samples):
  """Eight equal Gaussians (std 0.5) on a circle of radius 5: exact density and score."""
  return ring_mixture().sample(key, num_samples)


def get_sampler(name: str, **kwargs):
  """Returns the sampler registered as `name`, with keyword options bound."""
  sampler = TOY_2D.get(name)
  return functools.partial(sampler, **kwargs) if kwargs else sampler
