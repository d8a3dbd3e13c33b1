"""The diffusion model's own denoising loss as a class likelihood (a "diffusion
classifier"), the yardstick of UnlearnDiffAtk.

The pointwise I-MMSE identity ("Information-Theoretic Diffusion", Kong, Brekelmans and
Ver Steeg, ICLR 2023, eq. 3 and 5): for a Gaussian channel z = alpha x + sigma eps with
half log-SNR lambda = log(alpha / sigma),

    log p(x | c) = C(x) - int exp(2 lambda) E_eps || x - E[x | z, c] ||^2 d lambda,

where C(x) does not depend on the class. With the model's data prediction x_hat(z, t; c)
in place of E[x | z, c] the integral is the ELBO-weighted denoising loss L_c(x) (the
weighting of "Variational Diffusion Models", Kingma et al., eq. 17, written in lambda), so
argmax_c log pi_c - L_c(x) is the Bayes classifier of the model's class-conditional
densities: exactly the Bayes classifier when the predictions are exact
(`ClassConditionalMixture` oracles; tested). "To Generate or Not? ... Unlearned
Diffusion Models Are Still Easy To Generate Unsafe Images" (Zhang et al., 2024, eq. 3)
attacks with the same denoising loss, minimised over the condition.

Estimates: lambda on a uniform grid of [lambda_min, lambda_max] (trapezoid rule; the
integrand's class differences vanish at both ends) or drawn uniformly there, and noise
drawn in antithetic pairs (eps, -eps) shared by every class (common random numbers).
"""
import jax
import jax.numpy as jnp

from diffjax.core import require_gaussian


def log_snr_grid(num_points=64, lambda_min=-6.0, lambda_max=6.0):
  """(lambda (L,), trapezoid weights (L,)) on a uniform grid of [lambda_min, lambda_max]."""
  lam = jnp.linspace(lambda_min, lambda_max, num_points)
  step = (lambda_max - lambda_min) / (num_points - 1)
  weights = jnp.full((num_points,), step).at[0].set(step / 2).at[-1].set(step / 2)
  return lam, weights


def antithetic_noise(key, num_pairs, shape):
  """(2 num_pairs, *shape) standard normal draws in pairs (eps, -eps)."""
  eps = jax.random.normal(key, (num_pairs, *shape))
  return jnp.concatenate([eps, -eps])


def denoising_loss(fields, path, x, eps, lam, weights):
  """L(x) (B,): sum_j weights_j exp(2 lam_j) mean_k ||x - x_hat(alpha_j x + sigma_j eps_k,
  t_j)||^2 (module docstring), with x (B, ...), eps (K, B, ...) or (K, ...) shared by the
  batch, lam and weights (L,); fields: the model's `Fields` under one condition per row
  of x."""
  view = require_gaussian(path, "The denoising-loss classifier")
  times = jnp.clip(view.time_at_log_snr(lam), 0.0, 1.0)

  def at(t, lam_j):
    alpha, sigma = view.alpha(t), view.sigma(t)

    def one_noise(e):
      e = jnp.broadcast_to(e, x.shape)
      t_batch = jnp.full((x.shape[0],), t)
      x_hat = fields.evaluate(alpha * x + sigma * e, t_batch).data
      return jnp.sum((x - x_hat).reshape(x.shape[0], -1) ** 2, -1)

    return jnp.exp(2.0 * lam_j) * jnp.mean(jax.lax.map(one_noise, eps), 0)

  per_lambda = jax.lax.map(lambda args: at(*args), (times, lam))     # (L, B)
  return jnp.sum(weights[:, None] * per_lambda, 0)


def class_log_likelihoods(fields_of, path, x, num_classes, key, num_pairs=64,
                          grid=None, log_prior=None):
  """(B, K) log pi_c - L_c(x): the denoising-loss classifier's scores (module docstring;
  up to a constant per row). fields_of(labels (B,)) -> `Fields`; grid: (lam, weights)
  (default `log_snr_grid()`); log_prior (K,): default uniform."""
  lam, weights = log_snr_grid() if grid is None else grid
  eps = antithetic_noise(key, num_pairs, x.shape)
  losses = jnp.stack([
      denoising_loss(fields_of(jnp.full((x.shape[0],), c, jnp.int32)), path, x, eps, lam,
                     weights) for c in range(num_classes)], -1)
  prior = jnp.zeros((num_classes,)) if log_prior is None else jnp.asarray(log_prior)
  return prior[None, :] - losses


def random_log_snr(key, num, lambda_min=-6.0, lambda_max=6.0):
  """(lambda (num,), weights (num,)): uniform draws on [lambda_min, lambda_max] with the
  weights (lambda_max - lambda_min) / num of an unbiased estimate of the integral."""
  lam = jax.random.uniform(key, (num,), minval=lambda_min, maxval=lambda_max)
  return lam, jnp.full((num,), (lambda_max - lambda_min) / num)
