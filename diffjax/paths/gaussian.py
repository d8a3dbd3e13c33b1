"""Gaussian diffusion paths x_t = alpha(t) x1 + sigma(t) z, z ~ N(0, I).

Time convention and the map to the score-SDE convention (written here once):
  diffjax time t in [0, 1] runs from the noise (t = 0) to the data (t = 1). The score-SDE
  papers ("Score-Based Generative Modeling through Stochastic Differential Equations",
  Song et al.) use a diffusion time s in [0, 1] running from the data (s = 0) to the noise
  (s = 1), so  s = 1 - t,  alpha(t) = alpha_sde(1 - t),  sigma(t) = sigma_sde(1 - t).
  Paths whose noise level vanishes at the data end (VP, sub-VP) have infinite sigma'(t)
  there; like score_sde (its `eps = 1e-3`) they are truncated to s in [s_min, s_max] by
  the affine map s = s_max - (s_max - s_min) t, so every coefficient and derivative is
  finite on the closed interval t in [0, 1]. Their forward SDE, in score-SDE time,
      dx = f(s) x ds + g(s) dW,  f = d log alpha / ds,  g^2 = d sigma^2 / ds - 2 f sigma^2
  (Song et al., eq. 5 and Appendix B), is reported in diffjax time by `forward_sde`.

As a `diffjax.core.Path` the Gaussian path is one-sided: x_t = a(t) x0 + b(t) x1 with
a = sigma(t) / sigma(0), b = alpha(t), gamma = 0 and the source x0 ~ N(0, sigma(0)^2 I)
(`source_std` = sigma(0): 1 for VP, sigma_max for VE/EDM), so flow matching and the
samplers start from the same x0, and `path.gaussian` gives back alpha, sigma, log-SNR and
the SDE coefficients. For VE/EDM the source neglects alpha(0) x1 = x1 against sigma_max z,
as in Song et al. (Sec. 3.4).

All coefficients are scalar functions of a scalar (or per-example vector) t.
"""
import math

import jax.numpy as jnp

from diffjax.core import Path
from diffjax.paths.interpolants import PATHS


def gaussian_path(name, alpha, sigma, dalpha=None, dsigma=None) -> Path:
  """The one-sided `Path` with x_t = alpha(t) x1 + sigma(t) eps, eps ~ N(0, I).

  alpha, sigma: scalar functions of t with sigma(0) > 0; dalpha, dsigma: optional closed
  forms of their derivatives (default `jax.jvp`).
  """
  sigma0 = float(sigma(jnp.zeros((), jnp.float32)))
  if not sigma0 > 0:
    raise ValueError(f"A Gaussian path needs sigma(0) > 0; {name!r} has {sigma0}.")
  return Path(name, a=lambda t: sigma(t) / sigma0, b=alpha,
              da=None if dsigma is None else (lambda t: dsigma(t) / sigma0), db=dalpha,
              source_std=sigma0)


def _affine_sde_time(s_min, s_max):
  """t -> s = s_max - (s_max - s_min) t: diffjax time to (truncated) score-SDE time, written
  as s_min + (s_max - s_min) (1 - t) so that s = s_min exactly at the data end."""
  return lambda t: s_min + (s_max - s_min) * (1 - t)


def _vp_schedule(beta_min, beta_max, s_min, s_max):
  """(log alpha, alpha') in diffjax time for the linear beta(s) = beta_min + s (beta_max -
  beta_min): log alpha_sde(s) = -1/2 int_0^s beta = -(beta_min s / 2 + (beta_max -
  beta_min) s^2 / 4) (Song et al., eq. 29, Appendix B), and alpha' = alpha beta(s)
  (s_max - s_min) / 2, as ds/dt = -(s_max - s_min)."""
  to_s = _affine_sde_time(s_min, s_max)

  def log_alpha(t):
    s = to_s(t)
    return -(0.5 * beta_min * s + 0.25 * (beta_max - beta_min) * s ** 2)

  def dalpha(t):
    beta = beta_min + (beta_max - beta_min) * to_s(t)
    return jnp.exp(log_alpha(t)) * beta * (0.5 * (s_max - s_min))

  return log_alpha, dalpha


@PATHS.register("vp")
def vp_path(beta_min=0.1, beta_max=20.0, s_min=1e-3, s_max=1.0) -> Path:
  """Variance-preserving SDE (DDPM's continuous limit), linear beta; alpha^2 + sigma^2 = 1."""
  log_alpha, dalpha = _vp_schedule(beta_min, beta_max, s_min, s_max)
  alpha = lambda t: jnp.exp(log_alpha(t))
  sigma = lambda t: jnp.sqrt(-jnp.expm1(2 * log_alpha(t)))
  # sigma' = -alpha alpha' / sigma (from alpha^2 + sigma^2 = 1), finite as s_min > 0: the
  # derivative of expm1 that autodiff takes, expm1(x) + 1, cancels in float32 at the noise
  # end (2 log alpha ~ -10: 6e-4 relative).
  dsigma = lambda t: -alpha(t) * dalpha(t) / sigma(t)
  return gaussian_path("vp", alpha, sigma, dalpha=dalpha, dsigma=dsigma)


@PATHS.register("sub_vp")
def sub_vp_path(beta_min=0.1, beta_max=20.0, s_min=1e-3, s_max=1.0) -> Path:
  """sub-VP SDE: the VP alpha with sigma = 1 - alpha^2 (Song et al., eq. 11 and 12)."""
  log_alpha, dalpha = _vp_schedule(beta_min, beta_max, s_min, s_max)
  alpha = lambda t: jnp.exp(log_alpha(t))
  sigma = lambda t: -jnp.expm1(2 * log_alpha(t))
  # sigma' = -2 alpha alpha', not autodiff's expm1(x) + 1, which cancels (see vp_path).
  return gaussian_path("sub_vp", alpha, sigma, dalpha=dalpha,
                       dsigma=lambda t: -2 * alpha(t) * dalpha(t))


@PATHS.register("iddpm_cosine")
def iddpm_cosine_path(offset=0.008, s_min=1e-4, s_max=0.9946) -> Path:
  """The cosine noise schedule alpha_sde^2(s) = f(s)/f(0), f(s) = cos^2(theta(s)),
  theta(s) = (s + c)/(1 + c) pi/2 ("Improved Denoising Diffusion Probabilistic Models",
  Nichol & Dhariwal, eq. 17); s_max < 1 keeps log-SNR finite at the noise end
  (DPM-Solver's T = 0.9946). sigma^2 = 1 - alpha^2 is computed as
  sin(theta(s) - theta(0)) sin(theta(s) + theta(0)) / cos^2(theta(0)), which keeps float32
  precision at the data end where alpha -> 1 (sqrt(1 - alpha^2) loses it)."""
  to_s = _affine_sde_time(s_min, s_max)
  scale = math.pi / (2 * (1 + offset))              # theta(s) = (s + offset) scale
  cos0 = math.cos(offset * scale)
  # alpha = cos(theta(s)) / cos0 = sin((1 - s) scale) / cos0, as pi/2 - theta(s) = (1 - s)
  # scale, with 1 - s = (1 - s_max) + (s_max - s_min) t; alpha' = sin(theta(s)) scale
  # (s_max - s_min) / cos0. Each is a sine of an angle formed without cancellation: the
  # cosine of an angle near pi/2 loses float32 precision (1e-5 relative at t = 0 or 1).
  alpha = lambda t: jnp.sin(((1 - s_max) + (s_max - s_min) * t) * scale) / cos0
  dalpha = lambda t: jnp.sin((to_s(t) + offset) * scale) * (scale * (s_max - s_min) / cos0)
  # theta(s) - theta(0) = s scale and theta(s) + theta(0) = (s + 2 offset) scale, exactly.
  sigma = lambda t: jnp.sqrt(jnp.maximum(
      jnp.sin(to_s(t) * scale) * jnp.sin((to_s(t) + 2 * offset) * scale), 0.0)) / cos0
  # alpha^2 + sigma^2 = 1, so sigma' = -alpha alpha' / sigma (sigma > 0 as s_min > 0).
  dsigma = lambda t: -alpha(t) * dalpha(t) / sigma(t)
  return gaussian_path("iddpm_cosine", alpha, sigma, dalpha=dalpha, dsigma=dsigma)


@PATHS.register("ve")
def ve_path(sigma_min=0.01, sigma_max=50.0) -> Path:
  """Variance-exploding SDE: alpha = 1, geometric sigma_sde(s) = sigma_min (sigma_max /
  sigma_min)^s (Song et al., eq. 9 and Appendix B; prior N(0, sigma_max^2 I))."""
  log_ratio = math.log(sigma_max / sigma_min)
  sigma = lambda t: sigma_min * jnp.exp(log_ratio * (1 - t))
  return gaussian_path("ve", jnp.ones_like, sigma, dalpha=jnp.zeros_like,
                       dsigma=lambda t: -log_ratio * sigma(t))


@PATHS.register("edm")
def edm_path(sigma_min=0.002, sigma_max=80.0, rho=7.0) -> Path:
  """EDM's sigma parametrisation: alpha = 1, sigma(t) = (sigma_max^(1/rho) + t
  (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho ("Elucidating the Design Space of
  Diffusion-Based Generative Models", Karras et al., eq. 5 and Table 1): a uniform grid
  in t is exactly EDM's rho-spaced noise-level discretisation."""
  lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
  sigma = lambda t: (hi + t * (lo - hi)) ** rho
  dsigma = lambda t: rho * (lo - hi) * (hi + t * (lo - hi)) ** (rho - 1)
  return gaussian_path("edm", jnp.ones_like, sigma, dalpha=jnp.zeros_like, dsigma=dsigma)


@PATHS.register("rectified_flow")
def rectified_flow_path() -> Path:
  """alpha = t, sigma = 1 - t ("Flow Straight and Fast", Liu et al., eq. 1): the straight
  path from N(0, I) (the one-sided linear interpolant)."""
  return gaussian_path("rectified_flow", lambda t: t, lambda t: 1 - t,
                       dalpha=jnp.ones_like, dsigma=lambda t: -jnp.ones_like(t))


@PATHS.register("one_sided_trigonometric")
def one_sided_trigonometric_path() -> Path:
  """alpha = sin(pi t / 2), sigma = cos(pi t / 2): the variance-preserving trigonometric
  path from N(0, I) (Albergo et al., "Stochastic Interpolants", one-sided, gamma = 0).
  cos(pi t / 2) is computed as sin(pi (1 - t) / 2), which is exactly 0 at t = 1 (the
  float32 pi / 2 exceeds pi / 2, and its cosine is -4e-8)."""
  quarter_turn = 0.5 * math.pi
  return gaussian_path("one_sided_trigonometric", lambda t: jnp.sin(quarter_turn * t),
                       lambda t: jnp.sin(quarter_turn * (1 - t)),
                       dalpha=lambda t: quarter_turn * jnp.sin(quarter_turn * (1 - t)),
                       dsigma=lambda t: -quarter_turn * jnp.sin(quarter_turn * t))


@PATHS.register("lipman")
def lipman_path(sigma_min=0.0) -> Path:
  """alpha = t, sigma = 1 - (1 - sigma_min) t from N(0, I): the conditional OT path of
  "Flow Matching for Generative Modeling" (Lipman et al., eq. 20; mu_t = t x1, sigma_t =
  1 - (1 - sigma_min) t). Velocity target x1 - (1 - sigma_min) x0 (eq. 21)."""
  return gaussian_path("lipman", lambda t: t, lambda t: 1 - (1 - sigma_min) * t,
                       dalpha=jnp.ones_like,
                       dsigma=lambda t: jnp.full_like(t, -(1 - sigma_min)))
