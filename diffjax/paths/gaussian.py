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

As an interpolant ("Stochastic Interpolants", Albergo et al., eq. 2.1) the path is
x_t = a(t) x0 + b(t) x1 with a = sigma(t) / sigma(0), b = alpha(t), gamma = 0, where the
source x0 ~ N(0, sigma(0)^2 I) is the path's `prior` (sigma(0) = 1 for VP, sigma_max for
VE/EDM), so `flow_matching` and the samplers start from the same x0. For VE/EDM the prior
neglects alpha(0) x1 = x1 against sigma_max z, as in Song et al. (Sec. 3.4).

All coefficients are scalar functions of a scalar (or per-example vector) t.
"""
import dataclasses
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from diffjax.paths.interpolants import PATHS, _time_column

ScalarFn = Callable[[jax.Array], jax.Array]

# Coefficients entering a division are floored here, so no formula divides by zero at an
# endpoint where a path reaches alpha = 0 or sigma = 0 (the rectified-flow path).
TINY = 1e-12


def _jvp(fn, t):
  return jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]


@dataclasses.dataclass(frozen=True)
class GaussianPath:
  """A Gaussian path alpha(t) x1 + sigma(t) z in diffjax time (see module docstring).

  Attributes:
    name: the registry name.
    alpha_fn, sigma_fn: scalar functions of t (shape () or (B,) -> same shape).
    dalpha_fn, dsigma_fn: optional closed-form derivatives (default: `jax.jvp`).
  """
  name: str
  alpha_fn: ScalarFn
  sigma_fn: ScalarFn
  dalpha_fn: Optional[ScalarFn] = None
  dsigma_fn: Optional[ScalarFn] = None

  # ----- scalar schedules: t of shape () or (B,) -> same shape -----
  def alpha(self, t):
    return self.alpha_fn(jnp.asarray(t, jnp.float32))

  def sigma(self, t):
    return self.sigma_fn(jnp.asarray(t, jnp.float32))

  def dalpha(self, t):
    t = jnp.asarray(t, jnp.float32)
    return self.dalpha_fn(t) if self.dalpha_fn else _jvp(self.alpha_fn, t)

  def dsigma(self, t):
    t = jnp.asarray(t, jnp.float32)
    return self.dsigma_fn(t) if self.dsigma_fn else _jvp(self.sigma_fn, t)

  def log_snr(self, t):
    """lambda(t) = log(alpha / sigma), increasing in t (DPM-Solver's half log-SNR)."""
    return (jnp.log(jnp.maximum(self.alpha(t), TINY))
            - jnp.log(jnp.maximum(self.sigma(t), TINY)))

  def dlog_snr(self, t):
    """lambda'(t) = alpha'/alpha - sigma'/sigma >= 0."""
    return (self.dalpha(t) / jnp.maximum(self.alpha(t), TINY)
            - self.dsigma(t) / jnp.maximum(self.sigma(t), TINY))

  def time_at_log_snr(self, lam, iterations=48):
    """Inverts lambda(t) by bisection on [0, 1] (lambda is increasing): lam any shape."""
    lam = jnp.asarray(lam, jnp.float32)

    def body(_, bounds):
      low, high = bounds
      mid = 0.5 * (low + high)
      below = self.log_snr(mid) < lam
      return jnp.where(below, mid, low), jnp.where(below, high, mid)

    low, high = jax.lax.fori_loop(0, iterations, body,
                                  (jnp.zeros_like(lam), jnp.ones_like(lam)))
    return 0.5 * (low + high)

  # ----- the SDEs -----
  def forward_sde(self, t):
    """(f, g) of the forward (noising) SDE dx = f x ds + g dW in score-SDE time s = 1 - t.

    f = d log alpha / ds = -alpha'/alpha, g^2 = 2 sigma^2 lambda'(t) (Song et al., eq. 5
    with the VP/VE/sub-VP coefficients of their Appendix B, written for any alpha, sigma).
    """
    f = -self.dalpha(t) / jnp.maximum(self.alpha(t), TINY)
    g2 = 2 * self.sigma(t) ** 2 * self.dlog_snr(t)
    return f, jnp.sqrt(jnp.maximum(g2, 0.0))

  def reverse_sde_eps(self, t):
    """eps(t) = g^2 / 2 = sigma^2 lambda': the level at which dX = (v + eps s) dt +
    sqrt(2 eps) dW is the reverse-time SDE of Song et al. (eq. 6) in diffjax time."""
    return self.sigma(t) ** 2 * self.dlog_snr(t)

  # ----- marginals and the prior -----
  @property
  def prior_std(self):
    """Standard deviation of the source N(0, sigma(0)^2 I)."""
    return self.sigma(0.0)

  def prior_sample(self, key, shape, dtype=jnp.float32):
    """x0 ~ N(0, sigma(0)^2 I) of the given shape."""
    return self.prior_std * jax.random.normal(key, shape, dtype)

  def prior_log_prob(self, x):
    """(B, ...) -> (B,): log N(x; 0, sigma(0)^2 I)."""
    flat = x.reshape(x.shape[0], -1)
    var = self.prior_std ** 2
    d = flat.shape[1]
    return -0.5 * (jnp.sum(flat ** 2, -1) / var + d * jnp.log(2 * jnp.pi * var))

  def marginal(self, t, x1):
    """Mean and std of x_t | x1 ~ N(alpha x1, sigma^2 I): t () or (B,), x1 (B, ...)."""
    return _time_column(self.alpha(t), x1) * x1, _time_column(self.sigma(t), x1)

  # ----- interpolant interface (flow_matching works on Gaussian paths) -----
  def coefficients(self, t):
    """(a, b, gamma) = (sigma / sigma(0), alpha, 0) for x0 ~ N(0, sigma(0)^2 I)."""
    return self.sigma(t) / self.prior_std, self.alpha(t), jnp.zeros_like(self.alpha(t))

  def coefficient_derivatives(self, t):
    return (self.dsigma(t) / self.prior_std, self.dalpha(t),
            jnp.zeros_like(self.alpha(t)))

  def sample(self, t, x0, x1, z=None):
    """x_t = alpha x1 + (sigma / sigma(0)) x0 with x0 from the prior; z is unused."""
    del z
    a, b, _ = (_time_column(c, x1) for c in self.coefficients(t))
    return a * x0 + b * x1

  def conditional_velocity(self, t, x0, x1, z=None):
    """d/dt x_t = alpha' x1 + (sigma' / sigma(0)) x0."""
    del z
    da, db, _ = (_time_column(c, x1) for c in self.coefficient_derivatives(t))
    return da * x0 + db * x1


def _affine_sde_time(s_min, s_max):
  """t -> s = s_max - (s_max - s_min) t: diffjax time to (truncated) score-SDE time."""
  return lambda t: s_max - (s_max - s_min) * t


def _vp_log_alpha(beta_min, beta_max):
  """log alpha_sde(s) = -1/2 int_0^s beta = -(beta_min s / 2 + (beta_max - beta_min) s^2 / 4)
  for beta(s) = beta_min + s (beta_max - beta_min) (Song et al., eq. 29, Appendix B)."""
  return lambda s: -(0.5 * beta_min * s + 0.25 * (beta_max - beta_min) * s ** 2)


@PATHS.register("vp")
def vp_path(beta_min=0.1, beta_max=20.0, s_min=1e-3, s_max=1.0) -> GaussianPath:
  """Variance-preserving SDE (DDPM's continuous limit), linear beta; alpha^2 + sigma^2 = 1."""
  to_s, log_alpha = _affine_sde_time(s_min, s_max), _vp_log_alpha(beta_min, beta_max)
  alpha = lambda t: jnp.exp(log_alpha(to_s(t)))
  sigma = lambda t: jnp.sqrt(-jnp.expm1(2 * log_alpha(to_s(t))))
  return GaussianPath("vp", alpha, sigma)


@PATHS.register("sub_vp")
def sub_vp_path(beta_min=0.1, beta_max=20.0, s_min=1e-3, s_max=1.0) -> GaussianPath:
  """sub-VP SDE: the VP alpha with sigma = 1 - alpha^2 (Song et al., eq. 11 and 12)."""
  to_s, log_alpha = _affine_sde_time(s_min, s_max), _vp_log_alpha(beta_min, beta_max)
  alpha = lambda t: jnp.exp(log_alpha(to_s(t)))
  sigma = lambda t: -jnp.expm1(2 * log_alpha(to_s(t)))
  return GaussianPath("sub_vp", alpha, sigma)


@PATHS.register("cosine")
def cosine_path(offset=0.008, s_min=1e-4, s_max=0.9946) -> GaussianPath:
  """The cosine schedule alpha_sde^2(s) = f(s)/f(0), f(s) = cos^2((s + c)/(1 + c) pi/2)
  ("Improved Denoising Diffusion Probabilistic Models", Nichol & Dhariwal, eq. 17);
  s_max < 1 keeps log-SNR finite at the noise end (DPM-Solver's T = 0.9946)."""
  to_s = _affine_sde_time(s_min, s_max)
  f = lambda s: jnp.cos((s + offset) / (1 + offset) * (math.pi / 2))
  alpha = lambda t: f(to_s(t)) / f(jnp.zeros_like(t))
  sigma = lambda t: jnp.sqrt(jnp.maximum(1 - alpha(t) ** 2, 0.0))
  return GaussianPath("cosine", alpha, sigma)


@PATHS.register("ve")
def ve_path(sigma_min=0.01, sigma_max=50.0) -> GaussianPath:
  """Variance-exploding SDE: alpha = 1, geometric sigma_sde(s) = sigma_min (sigma_max /
  sigma_min)^s (Song et al., eq. 9 and Appendix B; prior N(0, sigma_max^2 I))."""
  log_ratio = math.log(sigma_max / sigma_min)
  sigma = lambda t: sigma_min * jnp.exp(log_ratio * (1 - t))
  return GaussianPath("ve", jnp.ones_like, sigma, dalpha_fn=jnp.zeros_like,
                      dsigma_fn=lambda t: -log_ratio * sigma(t))


@PATHS.register("edm")
def edm_path(sigma_min=0.002, sigma_max=80.0, rho=7.0) -> GaussianPath:
  """EDM's sigma parametrisation: alpha = 1, sigma(t) = (sigma_max^(1/rho) + t
  (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho ("Elucidating the Design Space of
  Diffusion-Based Generative Models", Karras et al., eq. 5 and Table 1): a uniform grid
  in t is exactly EDM's rho-spaced noise-level discretisation."""
  lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
  sigma = lambda t: (hi + t * (lo - hi)) ** rho
  dsigma = lambda t: rho * (lo - hi) * (hi + t * (lo - hi)) ** (rho - 1)
  return GaussianPath("edm", jnp.ones_like, sigma, dalpha_fn=jnp.zeros_like,
                      dsigma_fn=dsigma)


@PATHS.register("rectified_flow")
def rectified_flow_path() -> GaussianPath:
  """alpha = t, sigma = 1 - t ("Flow Straight and Fast", Liu et al., eq. 1; "Flow Matching
  for Generative Modeling", Lipman et al., eq. 20 with sigma_min = 0)."""
  return GaussianPath("rectified_flow", lambda t: t, lambda t: 1 - t,
                      dalpha_fn=jnp.ones_like, dsigma_fn=lambda t: -jnp.ones_like(t))


def marginal_mixture(path: GaussianPath, mixture, t):
  """The law of x_t when x1 follows a `GaussianMixture`: weights w_k, means alpha mu_k,
  covariances alpha^2 C_k + sigma^2 I (t a scalar)."""
  from diffjax.data.gaussian_mixture import GaussianMixture  # pylint: disable=g-import-not-at-top
  a, s = path.alpha(t), path.sigma(t)
  d = mixture.dim
  return GaussianMixture(mixture.weights, a * mixture.means,
                         a ** 2 * mixture.covariances + (s ** 2) * jnp.eye(d)[None])


def is_gaussian_path(path) -> bool:
  return isinstance(path, GaussianPath)
