"""The shared core of likelihood guidance: add scale * grad_x log p(y | x_t) to the score.

On a Gaussian path x_t = alpha x1 + sigma eps a change d of the score changes the other
predictions by (`diffjax.fields`): noise -sigma d, data (sigma^2 / alpha) d, velocity
alpha' (sigma^2 / alpha) d - sigma' sigma d. Guidance is switched off where alpha(t) <
ALPHA_FLOOR (the pure-noise end, where p(y | x_t) is flat and the data prediction would
divide by alpha ~ 0).
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields, Predictions, require_gaussian, time_column

ALPHA_FLOOR = 1e-3


def add_to_score(predictions: Predictions, delta, x, t, view) -> Predictions:
  """Predictions whose score is score + delta (delta (B, ...)), the others to match."""
  col = lambda c: time_column(jnp.broadcast_to(c, jnp.shape(t)), x)
  alpha, sigma = col(view.alpha(t)), col(view.sigma(t))
  delta = jnp.where(alpha >= ALPHA_FLOOR, delta, 0.0)
  d_data = sigma ** 2 / jnp.maximum(alpha, ALPHA_FLOOR) * delta
  d_noise = -sigma * delta
  changes = dict(score=delta, noise=d_noise, data=d_data,
                 velocity=col(view.dalpha(t)) * d_data + col(view.dsigma(t)) * d_noise)
  return predictions._replace(**{name: getattr(predictions, name) + change
                                 for name, change in changes.items()
                                 if getattr(predictions, name) is not None})


def strength(scale, t):
  """scale(t) for a callable scale, else the constant."""
  return scale(t) if callable(scale) else scale


def score_guidance(fields: Fields, path, log_likelihood, scale=1.0) -> Fields:
  """Fields with score s + scale(t) grad_x log_likelihood(x, t) (log_likelihood: (B, ...),
  t -> (B,), each example's term depending on its own x only)."""
  view = require_gaussian(path, "Likelihood guidance")

  def evaluate(x, t):
    gradient = jax.grad(lambda y: jnp.sum(log_likelihood(y, t)))(x)
    return add_to_score(fields.evaluate(x, t), strength(scale, t) * gradient, x, t, view)

  return Fields(evaluate, fields.names)


def denoiser_guidance(fields: Fields, path, energy, scale=1.0) -> Fields:
  """Fields with score s - scale(t) grad_x energy(x1_hat(x, t)) (energy: (B, ...) -> (B,)),
  the gradient taken through the model's data prediction: one forward pass and one
  backward pass per evaluation (reconstruction guidance, TSDiff's self-guidance)."""
  view = require_gaussian(path, "Reconstruction guidance")
  fields.require(("data",), "Reconstruction guidance")

  def evaluate(x, t):
    data_of = lambda y: (lambda out: (out.data, out))(fields.evaluate(y, t))
    x1_hat, pullback, out = jax.vjp(data_of, x, has_aux=True)
    cotangent = jax.grad(lambda z: jnp.sum(energy(z)))(x1_hat)
    gradient = pullback(cotangent)[0]
    return add_to_score(out, -strength(scale, t) * gradient, x, t, view)

  return Fields(evaluate, fields.names)
