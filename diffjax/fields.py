"""Exact conversions between a model's predictions, on Gaussian paths and on interpolants.

Gaussian paths. On x_t = alpha x1 + sigma eps (`path.gaussian`, diffjax time) a network may
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
A network predicting noise or data gives the data prediction directly (no detour through
the velocity), which is what DDIM and DPM-Solver++ read.

Interpolants. On x_t = a x0 + b x1 + gamma z ("Stochastic Interpolants", Albergo, Boffi &
Vanden-Eijnden) the velocity b_hat and the score s_hat determine the rest (eq. 2.14-2.17):
  noise (the denoiser) eta = E[z | x_t] = -gamma s,
  deterministic velocity v = E[a' x0 + b' x1 | x_t] = b_hat + gamma gamma' s,
and, since x_t + gamma^2 s = a E[x0 | x_t] + b E[x1 | x_t] and v = a' E[x0 | x_t] +
b' E[x1 | x_t],
  data E[x1 | x_t] = (a v - a' (x + gamma^2 s)) / (a b' - a' b),
defined wherever a b' - a' b != 0 (for gamma = 0 the velocity alone suffices).
Shapes: x and predictions (B, ...); t () or (B,).
"""
from typing import NamedTuple

import jax.numpy as jnp

from diffjax.core import (PREDICTION_NAMES, TINY, Fields, GaussianView, Path, Predictions,
                          time_column)
from diffjax.registry import Registry

PREDICTIONS = Registry("prediction")


class _Coefficients(NamedTuple):
  alpha: jnp.ndarray
  sigma: jnp.ndarray
  dalpha: jnp.ndarray
  dsigma: jnp.ndarray


def _coefficients(view: GaussianView, t, x):
  col = lambda c: time_column(c, x)
  return _Coefficients(col(view.alpha(t)), col(view.sigma(t)), col(view.dalpha(t)),
                       col(view.dsigma(t)))


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


def convert(value, x, t, view: GaussianView, source: str, target: str):
  """Converts a `source` prediction at (x, t) on a Gaussian path into `target`.

  value, x: (B, ...); t: () or (B,); view: `path.gaussian`; source, target: names in
  `PREDICTIONS`.
  """
  src, dst = PREDICTIONS.get(source), PREDICTIONS.get(target)
  if source == target:
    return value
  c = _coefficients(view, t, x)
  x1, eps = src.to_pair(value, x, c)
  return dst.from_pair(x1, eps, x, c)


def gaussian_target(view: GaussianView, t, x1, eps, prediction: str):
  """(x_t, target): the noisy point alpha x1 + sigma eps and what a network predicting
  `prediction` regresses there. t: (B,); x1, eps: (B, ...)."""
  c = _coefficients(view, t, x1)
  xt = c.alpha * x1 + c.sigma * eps
  return xt, PREDICTIONS.get(prediction).from_pair(x1, eps, xt, c)


def prediction_mse_factor(view: GaussianView, t, prediction: str):
  """c(t) with |pred_hat - pred|^2 = c(t) |eps_hat - eps|^2 for a fixed x_t (t: (B,)).

  data: (sigma/alpha)^2; score: 1/sigma^2; v: ((alpha^2 + sigma^2)/alpha)^2;
  velocity: (sigma lambda')^2; noise: 1. Used to move a weighting between predictions.
  """
  PREDICTIONS.get(prediction)
  a, s = view.alpha(t), view.sigma(t)
  factors = {
      "noise": lambda: jnp.ones_like(a),
      "data": lambda: (s / _safe(a)) ** 2,
      "score": lambda: 1 / _safe(s) ** 2,
      "v": lambda: ((a ** 2 + s ** 2) / _safe(a)) ** 2,
      "velocity": lambda: (s * view.dlog_snr(t)) ** 2,
  }
  return factors[prediction]()


def gaussian_predictions(value, x, t, view: GaussianView, prediction: str) -> Predictions:
  """Every prediction (velocity, score, data, noise) from one `prediction` at (x, t); the
  given one is passed through unchanged (not round-tripped through the pair)."""
  c = _coefficients(view, t, x)
  x1, eps = PREDICTIONS.get(prediction).to_pair(value, x, c)
  out = Predictions(velocity=c.dalpha * x1 + c.dsigma * eps, score=-eps / _safe(c.sigma),
                    data=x1, noise=eps)
  return out._replace(**{prediction: value}) if prediction in Predictions._fields else out


def gaussian_fields(predict, path: Path, prediction: str) -> Fields:
  """Fields of a network predicting `prediction` (a `PREDICTIONS` name) on a Gaussian
  path: predict(x, t) -> (B, ...); one call gives velocity, score, data and noise."""
  PREDICTIONS.get(prediction)
  view = path.gaussian
  if view is None:
    raise ValueError(f"gaussian_fields needs a Gaussian path; got {path.name!r}.")
  return Fields(lambda x, t: gaussian_predictions(predict(x, t), x, t, view, prediction),
                ("velocity", "score", "data", "noise"))


def interpolant_predictions(path: Path, x, t, velocity, score=None) -> Predictions:
  """Predictions on an interpolant from its velocity b and, when gamma != 0, its score s
  (module docstring). Without a score (and gamma != 0) only the velocity is known."""
  if path.has_noise and score is None:
    return Predictions(velocity=velocity)
  col = lambda c: time_column(jnp.broadcast_to(c, jnp.shape(t)), x)
  a, b, g = (col(c) for c in path.coefficients(t))
  da, db, _ = (col(c) for c in path.coefficient_derivatives(t))
  if score is None:
    deterministic, mixed, noise = velocity, x, None
  else:
    deterministic = velocity + col(path.gamma_gamma_derivative(t)) * score
    mixed = x + g ** 2 * score
    noise = -g * score
  data = (a * deterministic - da * mixed) / _safe(a * db - da * b)
  return Predictions(velocity=velocity, score=score, data=data, noise=noise)


def velocity_fields(predict, path: Path) -> Fields:
  """Fields of a network predicting the velocity on any path: on a Gaussian path every
  prediction; on an interpolant with gamma = 0 also the data prediction."""
  if path.gaussian is not None:
    return gaussian_fields(predict, path, "velocity")
  if path.has_noise:
    return Fields.of(velocity=predict)
  return Fields(lambda x, t: interpolant_predictions(path, x, t, predict(x, t)),
                ("velocity", "data"))


_CONTINUOUS = ("velocity", "score", "data", "noise")


def complete(fields: Fields, path) -> Fields:
  """`fields` with every continuous prediction that `path` (any `diffjax.core.PathProtocol`)
  lets one derive exactly from those given (the given ones are kept as they are). On a
  Gaussian path any one of data, noise, velocity or score gives all four; on an
  interpolant the velocity (and the score, when gamma != 0) give the data prediction and
  the noise. Fields with no continuous prediction (token logits on the masking process)
  or with all of them are returned unchanged."""
  names = set(fields.names)
  if not names & set(_CONTINUOUS) or set(_CONTINUOUS) <= names:
    return fields
  view = path.gaussian
  evaluate = fields.evaluate
  if view is not None:
    source = next((n for n in ("data", "noise", "velocity", "score") if n in names), None)
    if source is None:
      return fields
    derive = lambda x, t, out: gaussian_predictions(getattr(out, source), x, t, view, source)
    derived = _CONTINUOUS
  elif "velocity" in names and (not path.has_noise or "score" in names):
    derive = lambda x, t, out: interpolant_predictions(path, x, t, out.velocity, out.score)
    derived = ("velocity", "score", "data", "noise") if path.has_noise else (
        "velocity", "data")
  else:
    return fields

  def completed(x, t):
    out = evaluate(x, t)
    full = derive(x, t, out)
    return full._replace(**{n: getattr(out, n) for n in fields.names})

  return Fields(completed, _ordered(names | set(derived)))


def _ordered(names):
  return tuple(n for n in PREDICTION_NAMES if n in names)


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


def edm_denoiser(apply_fn, params, view: GaussianView, sigma_data=0.5, cond=None):
  """x1_hat(x, t) = c_skip x~ + c_out F(c_in x~, c_noise) with x~ = x / alpha and noise level
  sigma~ = sigma / alpha (Karras et al., eq. 7 and Table 1, on the scaled variable of
  their eq. 4); the network F receives c_noise as its time input. t: () or (B,)."""
  def denoise(x, t):
    col = lambda c: time_column(c, x)
    level = view.sigma(t) / _safe(view.alpha(t))
    c_skip, c_out, c_in, c_noise = edm_preconditioning(level, sigma_data)
    x_scaled = x / _safe(col(view.alpha(t)))
    out = apply_fn(params, col(c_in) * x_scaled, c_noise, cond)
    return col(c_skip) * x_scaled + col(c_out) * out
  return denoise
