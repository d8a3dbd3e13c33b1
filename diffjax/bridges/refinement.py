"""Iterative reference refinement: the maximum-likelihood refit of a reference drift.

"Multi-marginal Schrödinger Bridges with Iterative Reference Refinement" (Shen,
Berlinghieri & Broderick, AISTATS 2025, Alg. 1) alternates fitting bridges under the
current reference with refitting the reference's parameters to the bridged trajectories
by maximum likelihood. Under the Euler–Maruyama discretisation the log-likelihood of a
path's increments is, up to a constant,
    -sum_j |x_{j+1} - x_j - h_j f(theta, x_j, t_j)|^2 / (2 g^2 h_j),
so the maximum-likelihood theta is a weighted nonlinear least-squares problem, solved
here by Levenberg–Marquardt (exactly, in one step, when f is linear in theta, as for the
Lotka–Volterra and linear families). The diffusion g stays fixed, as in the paper.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from diffjax.bridges.reference import Reference


class Increments(NamedTuple):
  """Path increments: start x (P, D), end (P, D), start time t (P,), step h (P,)."""
  start: jax.Array
  end: jax.Array
  t: jax.Array
  h: jax.Array


def path_increments(trajectories, ts) -> Increments:
  """Increments of paths on increasing grids: trajectories (N + 1, M, D) with ts (N + 1,),
  or stacked segments (S, N + 1, M, D) with ts (S, N + 1)."""
  if trajectories.ndim == 3:
    trajectories, ts = trajectories[None], ts[None]
  start, end = trajectories[:, :-1], trajectories[:, 1:]          # (S, N, M, D)
  t = jnp.broadcast_to(ts[:, :-1, None], start.shape[:3])
  h = jnp.broadcast_to((ts[:, 1:] - ts[:, :-1])[:, :, None], start.shape[:3])
  dim = trajectories.shape[-1]
  return Increments(start.reshape(-1, dim), end.reshape(-1, dim), t.reshape(-1),
                    h.reshape(-1))


def scaled_residuals(reference: Reference, params, increments: Increments):
  """(x_end - x_start - h f) / sqrt(h): (P, D); its squared norm / (2 g^2) is the
  negative log-likelihood."""
  drift = reference.drift(increments.start, increments.t, params)
  h = increments.h[:, None]
  return (increments.end - increments.start - h * drift) / jnp.sqrt(h)


def negative_log_likelihood(reference: Reference, params, increments: Increments):
  """Mean over increments of |residual|^2 / (2 g^2) (the constant dropped)."""
  residual = scaled_residuals(reference, params, increments)
  return 0.5 * jnp.mean(jnp.sum(residual ** 2, -1)) / reference.diffusion() ** 2


def refit_reference(reference: Reference, increments: Increments, num_iterations=20,
                    damping=1e-3):
  """The maximum-likelihood parameters of the reference's drift family on the increments,
  by Levenberg–Marquardt from reference.params. Returns (params, nll before, nll after)."""
  theta0, unravel = ravel_pytree(reference.params)

  def residuals(theta):
    return scaled_residuals(reference, unravel(theta), increments).reshape(-1)

  def loss(theta):
    return 0.5 * jnp.mean(residuals(theta) ** 2)

  def body(_, carry):
    theta, lam, value = carry
    r = residuals(theta)
    jac = jax.jacfwd(residuals)(theta)                     # (P D, num_params)
    normal = jac.T @ jac
    gradient = jac.T @ r
    step = jnp.linalg.solve(normal + lam * jnp.diag(jnp.diag(normal))
                            + 1e-9 * jnp.eye(theta.shape[0]), -gradient)
    candidate = theta + step
    new_value = loss(candidate)
    better = new_value < value
    return (jnp.where(better, candidate, theta), jnp.where(better, lam / 3, lam * 3),
            jnp.where(better, new_value, value))

  theta, _, _ = jax.lax.fori_loop(0, num_iterations, body,
                                  (theta0, jnp.float32(damping), loss(theta0)))
  params = unravel(theta)
  return (params, negative_log_likelihood(reference, reference.params, increments),
          negative_log_likelihood(reference, params, increments))
