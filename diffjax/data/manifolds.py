"""Data on manifolds of known dimension, for intrinsic-dimension estimates.

Each entry of `MANIFOLDS` is a `Manifold(sample, ambient_dim, intrinsic_dim)` with
`sample(key, n) -> (n, ambient_dim)` float32, jit-compatible:

  circle            the unit circle in R^2, uniform (d = 1);
  sphere            the unit sphere S^2 in R^3, uniform (d = 2);
  linear_subspace   x = U z, z ~ N(0, I_3), U a fixed (seeded) orthonormal 10 x 3 basis: a
                    3-dimensional Gaussian in R^10 (d = 3), whose diffused score is exact
                    (`linear_subspace_score`).
"""
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.digits import digits_bin_centres
from diffjax.registry import Registry

MANIFOLDS = Registry("manifold")


class Manifold(NamedTuple):
  sample: Callable
  ambient_dim: int
  intrinsic_dim: int


def subspace_basis(ambient_dim=10, intrinsic_dim=3, seed=0):
  """A fixed orthonormal (ambient_dim, intrinsic_dim) basis (QR of a seeded Gaussian)."""
  gaussian = np.random.default_rng(seed).standard_normal((ambient_dim, intrinsic_dim))
  return jnp.asarray(np.linalg.qr(gaussian)[0], jnp.float32)


def _circle(key, n):
  angle = 2 * jnp.pi * jax.random.uniform(key, (n,))
  return jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)


def _sphere(key, n):
  x = jax.random.normal(key, (n, 3))
  return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def _linear_subspace(key, n):
  return jax.random.normal(key, (n, 3)) @ subspace_basis().T


MANIFOLDS.register("circle", Manifold(_circle, 2, 1))
MANIFOLDS.register("sphere", Manifold(_sphere, 3, 2))
MANIFOLDS.register("linear_subspace", Manifold(_linear_subspace, 10, 3))


def linear_subspace_score(basis, alpha, sigma):
  """The exact score of x_t = alpha x1 + sigma eps for x1 = U z, z ~ N(0, I_d): x_t ~
  N(0, alpha^2 U U^T + sigma^2 I), so s(x) = -(alpha^2 U U^T + sigma^2 I)^{-1} x, returned
  as a function (B, D) -> (B, D)."""
  ambient = basis.shape[0]
  precision = jnp.linalg.inv(alpha ** 2 * basis @ basis.T + sigma ** 2 * jnp.eye(ambient))
  return lambda x: -x @ precision


class ManifoldData(NamedTuple):
  """A study's data: sample(key, n) -> (n, ambient_dim), the true intrinsic dimension
  (None when unknown) and reference points (M, ambient_dim) held out from training."""
  sample: Callable
  ambient_dim: int
  intrinsic_dim: Optional[int]
  reference: np.ndarray


def manifold_data(name: str) -> ManifoldData:
  """A registered manifold (reference: 2,000 draws from a key no training step uses), or
  "digits": training digits as (64,) vectors in [-1, 1], the test digits as reference."""
  if name == "digits":
    train = jnp.asarray(digits_bin_centres("train", flat=True)[0])
    draw = lambda key, n: train[jax.random.randint(key, (n,), 0, train.shape[0])]
    return ManifoldData(draw, train.shape[1], None,
                        digits_bin_centres("test", flat=True)[0])
  manifold = MANIFOLDS.get(name)
  reference = np.asarray(manifold.sample(jax.random.PRNGKey(12345), 2000))
  return ManifoldData(manifold.sample, manifold.ambient_dim, manifold.intrinsic_dim,
                      reference)


def manifold_data_names():
  """The names `manifold_data` takes: every registered manifold and "digits"."""
  return tuple(MANIFOLDS.names()) + ("digits",)
