"""Diffusion-driven input projection (DDA): test inputs are forward-noised, then denoised
by the diffusion model with guidance that keeps their coarse structure, so that a shifted
(corrupted) input is carried back toward the model's (source) domain.

"Back to the Source: Diffusion-Driven Adaptation to Test-Time Corruption" (Gao et al.,
CVPR 2023, eq. 4 to 6), after ILVR's low-pass refinement ("ILVR: Conditioning Method for
Denoising Diffusion Probabilistic Models", Choi et al., 2021): in diffjax time (t = 0
noise, t = 1 data, a Gaussian path x_t = alpha y + sigma eps) the input y is taken to
x_t0 = alpha(t0) y + sigma(t0) eps and integrated from t0 to 1 with the guided velocity

    v(x, t) - scale grad_x || phi(x1_hat(x, t)) - phi(y) ||^2,

phi the low-pass filter (2x2 average pooling, nearest upsampling back: ILVR's phi_N with
N = 2) and x1_hat the model's data prediction; DDA's gradient step on the denoised
estimate written as a velocity term. The unconditional model (the null class) projects:
the input's class is unknown at test time.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields, require_gaussian
from diffjax.fields import complete
from diffjax.solvers import sample


def low_pass(images, factor=2):
  """phi: (N, H, W, C) -> the same shape, averaged over factor x factor blocks."""
  n, h, w, c = images.shape
  pooled = images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
  return jnp.repeat(jnp.repeat(pooled, factor, axis=1), factor, axis=2)


def structure_guided(fields: Fields, path, reference, scale) -> Fields:
  """Fields whose velocity adds -scale grad_x ||phi(x1_hat) - phi(reference)||^2
  (module docstring); reference (B, ...) the inputs being projected."""
  fields = complete(fields, path)
  target = low_pass(reference)

  def evaluate(x, t):
    def distance(x):
      predictions = fields.evaluate(x, t)
      return jnp.sum((low_pass(predictions.data) - target) ** 2), predictions
    grad, predictions = jax.grad(distance, has_aux=True)(x)
    return predictions._replace(velocity=predictions.velocity - scale * grad)

  return Fields.of(velocity=lambda x, t: evaluate(x, t).velocity)


def project(fields: Fields, path, inputs, key, *, start=0.5, num_steps=10, scale=2.0,
            solver="ddim"):
  """DDA's projection of inputs (B, ...): forward-noised to time `start` (0: pure noise, 1:
  the input itself), then `num_steps` steps of `solver` to t = 1 under
  `structure_guided` fields (scale 0: plain re-diffusion)."""
  view = require_gaussian(path, "DDA's projection")
  x = view.alpha(start) * inputs + view.sigma(start) * jax.random.normal(key, inputs.shape)
  guided = structure_guided(fields, path, inputs, scale)
  grid = jnp.linspace(start, 1.0, num_steps + 1)
  return sample(solver, guided, path, x, jax.random.fold_in(key, 1), num_steps=num_steps,
                grid=grid).x
