"""A drift affine in x with polynomial coefficients in t: the model family of Gaussian
bridges.

Under a linear reference the Schrödinger bridge between two Gaussians has drifts
f(x, t) = M(t) x + c(t) (`diffjax.bridges.gaussian`), so a network of the form
    drift(x, t) = x W(t)^T + c(t),
    W(t) = sum_k W_k P_k(2 t - 1),  c(t) = sum_k c_k P_k(2 t - 1)
(P_k the Legendre polynomials up to `degree`) contains them up to the polynomial
approximation of smooth coefficients. Registered as the model "time_affine": a small,
fast and well-conditioned stand-in for an MLP when the target is Gaussian (tests, the
Gaussian baseline).
"""
from typing import Sequence

import jax
import jax.numpy as jnp

from diffjax.models.base import MODELS, Model, broadcast_time


def legendre_features(t, degree):
  """(B,) times in [0, 1] -> (B, degree + 1) Legendre polynomials of 2 t - 1."""
  s = 2.0 * t - 1.0
  features = [jnp.ones_like(s), s]
  for k in range(1, degree):
    features.append(((2 * k + 1) * s * features[k] - k * features[k - 1]) / (k + 1))
  return jnp.stack(features[:degree + 1], -1)


@MODELS.register("time_affine")
def time_affine(data_shape: Sequence[int], degree=4, init_scale=0.01) -> Model:
  """The affine drift model for vector data of shape (D,) (module docstring)."""
  if len(data_shape) != 1:
    raise ValueError(f"time_affine needs vector data of shape (D,); got {data_shape}.")
  dim = data_shape[0]

  def init(key):
    k_w, k_c = jax.random.split(key)
    return {"w": init_scale * jax.random.normal(k_w, (degree + 1, dim, dim)),
            "c": init_scale * jax.random.normal(k_c, (degree + 1, dim))}

  def apply(params, x, t, cond=None, *, dropout_key=None):
    del cond, dropout_key
    phi = legendre_features(broadcast_time(t, x.shape[0]), degree)        # (B, K)
    w = jnp.einsum("bk,kij->bij", phi, params["w"])
    return jnp.einsum("bij,bj->bi", w, x) + phi @ params["c"]

  return Model(init, apply)
