"""h-space: the U-Net bottleneck as a semantic latent space, and edits along directions in it.

"Discovering Interpretable Directions in the Semantic Latent Space of Diffusion Models"
(Haas, Huberman-Spiegelglas, Mulayoff, Graßhof, Brandt & Michaeli, FG 2024): the output of
the U-Net's middle block, h, behaves like a GAN latent. Directions found there, and added
to h while sampling, edit the image:
  - unsupervised, global: principal components of h over samples and times (Sec. 4.1);
  - unsupervised, image-specific: the top right singular vectors of the Jacobian of the
    denoiser's output with respect to h at one (x_t, t) (Sec. 4.2; the pull-back view of
    Park et al., "Understanding the Latent Space of Diffusion Models through the Lens of
    Riemannian Geometry", NeurIPS 2023), found by subspace iteration on J^T J with one
    `jax.jvp` and one `jax.vjp` per iteration;
  - supervised: the difference of the mean h of two labelled groups (Sec. 4.3).

  h = bottleneck(model, params, x, t)                         # (B, *h_shape)
  directions, explained = principal_directions(h, k)          # (k, *h_shape), (k,)
  v, s = jacobian_directions(lambda h: denoise(h), h[:1], k, key)
  apply = edited_apply(model, direction, strength, interval=(0.5, 1.0))
  # apply(params, x, t, cond) adds strength * direction to h for t in the interval: build
  # fields with it (objective.fields(apply, params)) and sample as usual.

The model must expose the bottleneck (`model.apply(..., return_bottleneck=True,
bottleneck_edit=f)`, as the `unet` does); `require_bottleneck` refuses others.
"""
import inspect

import jax
import jax.numpy as jnp

from diffjax.core import time_column
from diffjax.errors import ConfigError

BOTTLENECK_ARGUMENTS = ("return_bottleneck", "bottleneck_edit")


def has_bottleneck(model) -> bool:
  parameters = inspect.signature(model.apply).parameters
  return all(name in parameters for name in BOTTLENECK_ARGUMENTS)


def require_bottleneck(model, name: str):
  """Returns `model`, or raises ConfigError naming the model (`name`) that has none."""
  if not has_bottleneck(model):
    raise ConfigError(f"model.name={name!r} has no bottleneck (h-space) to read or edit; "
                      "use a model that exposes one: unet.")
  return model


def bottleneck(model, params, x, t, cond=None):
  """h (B, *h_shape): the middle block's output at (x, t)."""
  return model.apply(params, x, t, cond, return_bottleneck=True)[1]


def flatten(h):
  return h.reshape(h.shape[0], -1)


def principal_directions(h, k):
  """Top-k principal components of h (N, *h_shape) (N samples, e.g. samples x times):
  unit directions (k, *h_shape) and the share of the variance each explains (k,)."""
  flat = flatten(h)
  centred = flat - jnp.mean(flat, axis=0, keepdims=True)
  _, s, vt = jnp.linalg.svd(centred, full_matrices=False)
  variance = s ** 2
  return vt[:k].reshape((k,) + h.shape[1:]), variance[:k] / jnp.sum(variance)


def jacobian_directions(fn, h, k, key, iterations=30):
  """The top-k right singular vectors and singular values of J = d fn / d h at one h.

  fn: h (1, *h_shape) -> any array; h: (1, *h_shape). Subspace iteration V <- orth(J^T J V)
  with `jax.jvp` (J v) and `jax.vjp` (J^T u), vmapped over the k vectors; converges at the
  rate of s_{k+1} / s_k per iteration. Returns (k, *h_shape) unit directions, ordered by
  the singular values (k,).
  """
  size = h[0].size
  _, pullback = jax.vjp(fn, h)

  def forward(v):
    return jax.jvp(fn, (h,), (v.reshape(h.shape),))[1]

  def normal_operator(v):
    return pullback(forward(v))[0].reshape(-1)

  def orthonormal(vectors):  # (k, size) -> (k, size) with orthonormal rows
    return jnp.linalg.qr(vectors.T)[0].T

  start = orthonormal(jax.random.normal(key, (k, size)))
  basis = jax.lax.fori_loop(
      0, iterations, lambda _, v: orthonormal(jax.vmap(normal_operator)(v)), start)
  # Rayleigh-Ritz in the converged subspace: exact singular pairs of J restricted to it.
  images = jax.vmap(lambda v: forward(v).reshape(-1))(basis)      # (k, out)
  _, s, rotation = jnp.linalg.svd(images.T, full_matrices=False)
  directions = rotation @ basis
  return directions.reshape((k,) + h.shape[1:]), s


def class_mean_direction(h, labels, source, target):
  """mean(h | target) - mean(h | source): (*h_shape); h (N, *h_shape), labels (N,)."""
  labels = jnp.asarray(labels)
  mean = lambda c: jnp.sum(jnp.where(time_column(labels == c, h), h, 0.0), axis=0) / jnp.maximum(
      jnp.sum(labels == c), 1)
  for c in (source, target):
    if not bool(jnp.any(labels == c)):
      raise ConfigError(f"No example of class {c} to form a direction from.")
  return mean(target) - mean(source)


def random_directions(key, like, count):
  """`count` random directions (count, *shape) with the norm of `like` (*shape)."""
  v = jax.random.normal(key, (count,) + like.shape)
  norms = jnp.linalg.norm(v.reshape(count, -1), axis=-1)
  return v * (jnp.linalg.norm(like) / norms).reshape((count,) + (1,) * like.ndim)


def edited_apply(model, direction, strength, interval=(0.0, 1.0)):
  """model.apply with h -> h + strength * direction for times t in [interval[0],
  interval[1]] (h unchanged outside); direction (*h_shape) or (B, *h_shape); strength a
  scalar or (B,). The result has the signature of model.apply (for objective.fields)."""
  low, high = interval
  direction = jnp.asarray(direction)
  if not 0.0 <= low <= high <= 1.0:
    raise ConfigError(f"The edit interval {interval} must satisfy 0 <= start <= end <= 1.")

  def apply(params, x, t, cond=None, **kwargs):
    t_vec = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
    on = ((t_vec >= low) & (t_vec <= high)).astype(jnp.float32) * strength

    def edit(h):
      shift = direction if direction.ndim == h.ndim else direction[None]
      return h + time_column(on, h) * shift

    return model.apply(params, x, t, cond, bottleneck_edit=edit, **kwargs)

  return apply
