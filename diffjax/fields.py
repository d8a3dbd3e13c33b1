"""Exact conversions between the predictions a network can make on a Gaussian path.

On x_t = alpha x1 + sigma eps (diffjax time, see `diffjax.paths.gaussian`) a network may
predict, at (x_t, t):
  noise     eps_hat ~ E[eps | x_t]                 ("Denoising Diffusion Probabilistic
                                                     Models", Ho et al., eq. 11)
  data      x1_hat  ~ E[x1 | x_t]  (the denoiser D of Karras et al., eq. 2)
  score     s_hat   ~ grad log p_t = -E[eps | x_t] / sigma   (Song et al., eq. 7)
  v         v_hat   = alpha eps - sigma x1   ("Progressive Distillation for Fast Sampling
                                              of Diffusion Models", Salimans & Ho, Sec. 4)
  velocity  u_hat   = alpha' x1 + sigma' eps, the probability-flow ODE drift d x_t / dt
                                             (Lipman et al., eq. 16 in diffjax time)
Every one is an invertible affine function of the pair (x1_hat, eps_hat) given x_t, so
all conversions go through that pair and round-trip exactly:
  from v:        x1 = (alpha x - sigma v) / (alpha^2 + sigma^2),
                 eps = (sigma x + alpha v) / (alpha^2 + sigma^2);
  from velocity: x1 = (sigma' x - sigma u) / (alpha sigma' - sigma alpha'),
                 eps = (alpha u - alpha' x) / (alpha sigma' - sigma alpha').
Shapes: x and predictions (B, ...); t () or (B,).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import jax.scipy.special

from diffjax.paths.gaussian import TINY, marginal_mixture
from diffjax.paths.interpolants import _time_column
from diffjax.registry import Registry
from diffjax.solvers.sampling import Fields

PREDICTIONS = Registry("prediction")


class _Coefficients(NamedTuple):
  alpha: jnp.ndarray
  sigma: jnp.ndarray
  dalpha: jnp.ndarray
  dsigma: jnp.ndarray


def _coefficients(path, t, x):
  col = lambda c: _time_column(c, x)
  return _Coefficients(col(path.alpha(t)), col(path.sigma(t)), col(path.dalpha(t)),
                       col(path.dsigma(t)))


def _safe(c):
  return jnp.where(jnp.abs(c) < TINY, TINY, c)


class _Prediction(NamedTuple):
  to_pair: callable     # (value, x, coefficients) -> (x1, eps)
  from_pair: callable   # (x1, eps, x, coefficients) -> value


PREDICTIONS.register("noise", _Prediction(
    lambda p, x, c: ((x - c.sigma * p) / _safe(c.alpha), p),
    lambda x1, eps, x, c: eps))
PREDICTIONS.register("data", _Prediction(
    lambda p, x, c: (p, (x - c.alpha * p) / _safe(c.sigma)),
    lambda x1, eps, x, c: x1))
PREDICTIONS.register("score", _Prediction(
    lambda p, x, c: ((x + c.sigma ** 2 * p) / _safe(c.alpha), -c.sigma * p),
    lambda x1, eps, x, c: -eps / _safe(c.sigma)))


def _from_v(p, x, c):
  norm = c.alpha ** 2 + c.sigma ** 2
  return (c.alpha * x - c.sigma * p) / norm, (c.sigma * x + c.alpha * p) / norm


PREDICTIONS.register("v", _Prediction(
    _from_v, lambda x1, eps, x, c: c.alpha * eps - c.sigma * x1))


def _from_velocity(p, x, c):
  det = _safe(c.alpha * c.dsigma - c.sigma * c.dalpha)
  return (c.dsigma * x - c.sigma * p) / det, (c.alpha * p - c.dalpha * x) / det


PREDICTIONS.register("velocity", _Prediction(
    _from_velocity, lambda x1, eps, x, c: c.dalpha * x1 + c.dsigma * eps))


def convert(value, x, t, path, source: str, target: str):
  """Converts a `source` prediction at (x, t) on a Gaussian `path` into `target`.

  value, x: (B, ...); t: () or (B,); source, target: names in `PREDICTIONS`.
  """
  src, dst = PREDICTIONS.get(source), PREDICTIONS.get(target)
  if source == target:
    return value
  c = _coefficients(path, t, x)
  x1, eps = src.to_pair(value, x, c)
  return dst.from_pair(x1, eps, x, c)


def prediction_mse_factor(path, t, prediction: str):
  """c(t) with |pred_hat - pred|^2 = c(t) |eps_hat - eps|^2 for a fixed x_t (t: (B,)).

  data: (sigma/alpha)^2; score: 1/sigma^2; v: ((alpha^2 + sigma^2)/alpha)^2;
  velocity: (sigma lambda')^2; noise: 1. Used to move a weighting between predictions.
  """
  PREDICTIONS.get(prediction)
  a, s = path.alpha(t), path.sigma(t)
  factors = {
      "noise": lambda: jnp.ones_like(a),
      "data": lambda: (s / _safe(a)) ** 2,
      "score": lambda: 1 / _safe(s) ** 2,
      "v": lambda: ((a ** 2 + s ** 2) / _safe(a)) ** 2,
      "velocity": lambda: (s * path.dlog_snr(t)) ** 2,
  }
  return factors[prediction]()


def gaussian_fields(predict, path, prediction: str) -> Fields:
  """Fields(velocity, score) of a network predicting `prediction`: predict(x, t) -> (B, ...)."""
  PREDICTIONS.get(prediction)

  def velocity_and_score(x, t):
    out = predict(x, t)
    return (convert(out, x, t, path, prediction, "velocity"),
            convert(out, x, t, path, prediction, "score"))

  return Fields(
      velocity=lambda x, t: convert(predict(x, t), x, t, path, prediction, "velocity"),
      score=lambda x, t: convert(predict(x, t), x, t, path, prediction, "score"),
      velocity_and_score=velocity_and_score)


def data_prediction(fields: Fields, path, x, t):
  """x1_hat = E[x1 | x_t] from the velocity field (defined whenever lambda' > 0, including
  alpha(t) = 0): x1 = (sigma' x - sigma v) / (alpha sigma' - sigma alpha'). One field call."""
  return convert(fields.velocity(x, t), x, t, path, "velocity", "data")


# ----- EDM preconditioning ("Elucidating the Design Space...", Karras et al., Table 1) -----
def edm_preconditioning(noise_level, sigma_data=0.5):
  """c_skip, c_out, c_in, c_noise for a noise level sigma~ (any shape).

  c_skip = sd^2 / (s^2 + sd^2), c_out = s sd / sqrt(s^2 + sd^2),
  c_in = 1 / sqrt(s^2 + sd^2), c_noise = log(s) / 4.
  """
  s2, sd2 = noise_level ** 2, sigma_data ** 2
  c_skip = sd2 / (s2 + sd2)
  c_out = noise_level * sigma_data / jnp.sqrt(s2 + sd2)
  c_in = 1 / jnp.sqrt(s2 + sd2)
  c_noise = 0.25 * jnp.log(noise_level)
  return c_skip, c_out, c_in, c_noise


def edm_denoiser(apply_fn, params, path, sigma_data=0.5, cond=None):
  """x1_hat(x, t) = c_skip x~ + c_out F(c_in x~, c_noise) with x~ = x / alpha and noise level
  sigma~ = sigma / alpha (Karras et al., eq. 7 and Table 1, on the scaled variable of
  their eq. 4); the network F receives c_noise as its time input. t: () or (B,)."""
  def denoise(x, t):
    a = _time_column(path.alpha(t), x)
    level = path.sigma(t) / _safe(path.alpha(t))
    c_skip, c_out, c_in, c_noise = edm_preconditioning(level, sigma_data)
    col = lambda c: _time_column(c, x)
    x_scaled = x / _safe(a)
    out = apply_fn(params, col(c_in) * x_scaled, c_noise, cond)
    return col(c_skip) * x_scaled + col(c_out) * out
  return denoise


# ----- exact fields of a Gaussian-mixture target (test and benchmark oracle) -----
def gaussian_mixture_fields(mixture, path) -> Fields:
  """Exact velocity and score of x_t when x1 ~ `mixture` (a `GaussianMixture`, (K, D)).

  rho_t is the mixture with means alpha mu_k and covariances alpha^2 C_k + sigma^2 I
  ("Stochastic Interpolants", Albergo et al., the Gaussian-mixture oracle with gamma = 0);
  E[x1 | x_t] = sum_k r_k (mu_k + alpha C_k (alpha^2 C_k + sigma^2 I)^{-1} (x - alpha mu_k))
  and velocity = alpha' E[x1 | x] - sigma' sigma score need no division by alpha or sigma.
  x: (B, D), t scalar.
  """
  def score(x, t):
    return marginal_mixture(path, mixture, t).score(x)

  def velocity_and_score(x, t):
    a = path.alpha(t)
    marg = marginal_mixture(path, mixture, t)
    log_comp, precision_diff = marg.component_terms(x)
    resp = jax.nn.softmax(log_comp, axis=-1)                              # (B, K)
    gain = -a * jnp.einsum("kij,bkj->bki", mixture.covariances, precision_diff)
    posterior_mean = jnp.einsum("bk,bkd->bd", resp, mixture.means[None] + gain)
    s = jnp.einsum("bk,bkd->bd", resp, precision_diff)
    return path.dalpha(t) * posterior_mean - path.dsigma(t) * path.sigma(t) * s, s

  return Fields(velocity=lambda x, t: velocity_and_score(x, t)[0], score=score,
                velocity_and_score=velocity_and_score)
