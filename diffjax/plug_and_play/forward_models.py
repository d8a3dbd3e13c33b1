"""Diffusion with Forward Models (DFM): a diffusion model of full signals trained only on
observations made through a known stochastic forward model.

"Diffusion with Forward Models: Solving Stochastic Inverse Problems Without Direct
Supervision" (Tewari et al., NeurIPS 2023, Sec. 3): the signal x is never seen; each
training example is a pair of observations of one x, a context o_c = F(x, phi_c) and a
target o_t = F(x, phi_t), with the forward model F and its parameters phi known. The
diffusion runs on the target observation: o_t^tau = alpha o_t + sigma eps (on the pixels
the target observes). The denoiser D(o_t^tau, tau, o_c, phi_c, phi_t) outputs a full
signal x_hat, and the denoised observation is x_hat pushed through the forward model,
F(x_hat, phi_t); the loss compares that with o_t:
    L = |F(x_hat, phi_t) - o_t|^2 / |observed pixels|                     (eq. 4)
Sampling runs DDIM on a target observation whose data prediction is F(x_hat, phi_t); the
signal of the last evaluation is the sample of x (`dfm_sample`).

Here F(x, phi) = m_phi * x masks images (B, H, W, C) with a mask m_phi of `half_masks`
(left, right, top or bottom half) or with no mask (the "empty" context, phi = -1: nothing
observed; or the complete-data model, every pixel observed). With every pixel observed and
an empty context the loss is the ordinary data-prediction loss (tested).
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.core import require_gaussian, time_column


def half_masks(shape):
  """(4, H, W, C) float32: the left, right, top and bottom halves of images (H, W, C)."""
  h, w = shape[:2]
  masks = np.zeros((4,) + tuple(shape), np.float32)
  masks[0, :, :w // 2] = masks[1, :, w // 2:] = 1.0
  masks[2, :h // 2] = masks[3, h // 2:] = 1.0
  return jnp.asarray(masks)


def denoiser_input(noisy_target, target_mask, context, context_mask):
  """The denoiser's input: the four (B, H, W, C) arrays stacked on the channel axis."""
  return jnp.concatenate([noisy_target * target_mask, target_mask, context * context_mask,
                          context_mask], -1)


def dfm_loss(path, denoise, params, key, x, target_mask, context_mask):
  """DFM's loss (eq. 4) on signals x (B, H, W, C) observed through target_mask and
  context_mask (B, H, W, C) of 0/1: denoise(params, inputs (B, H, W, 4C), tau (B,)) ->
  x_hat (B, H, W, C); tau ~ U(0, 1) per example. Only F(x, phi) enters: x is masked
  before anything reads it."""
  view = require_gaussian(path, "DFM")
  observed, context = x * target_mask, x * context_mask
  k_tau, k_eps = jax.random.split(key)
  tau = jax.random.uniform(k_tau, x.shape[:1])
  col = lambda c: time_column(c, x)
  noisy = col(view.alpha(tau)) * observed + col(view.sigma(tau)) * jax.random.normal(
      k_eps, x.shape)
  x_hat = denoise(params, denoiser_input(noisy, target_mask, context, context_mask), tau)
  residual = (x_hat * target_mask - observed).reshape(x.shape[0], -1)
  count = jnp.maximum(jnp.sum(target_mask.reshape(x.shape[0], -1), -1), 1.0)
  return jnp.mean(jnp.sum(residual ** 2, -1) / count)


def dfm_sample(path, denoise, params, key, target_mask, context, context_mask, num_steps):
  """Full signals (B, H, W, C) from DDIM on the target observation (num_steps uniform steps
  from the source at tau = 0 to the data at 1), the data prediction F(x_hat, phi_t); the
  signal x_hat of the last evaluation is returned."""
  view = require_gaussian(path, "DFM")
  ts = jnp.linspace(0.0, 1.0, num_steps + 1)
  z = jax.random.normal(key, context.shape) * target_mask

  def step(z, times):
    t, t_next = times
    col = lambda c: time_column(jnp.broadcast_to(c, z.shape[:1]), z)
    x_hat = denoise(params, denoiser_input(z, target_mask, context, context_mask),
                    jnp.full(z.shape[:1], t))
    data = x_hat * target_mask
    noise = (z - col(view.alpha(t)) * data) / jnp.maximum(col(view.sigma(t)), 1e-6)
    z_next = col(view.alpha(t_next)) * data + col(view.sigma(t_next)) * noise
    return z_next * target_mask, x_hat

  _, signals = jax.lax.scan(step, z, (ts[:-1], ts[1:]))
  return signals[-1]
