"""Euler–Maruyama for the family of SDEs sharing the marginals of a path.

For a path with marginal velocity v and score s, every SDE
  dX = (v(X, t) + eps(t) s(X, t)) dt + sqrt(2 eps(t)) dW,   eps(t) >= 0,
run forward from t = 0 has the same marginals rho_t ("Stochastic Interpolants: A Unifying
Framework for Flows and Diffusions", Albergo, Boffi & Vanden-Eijnden, Thm. 2.21 / eq. 2.33).
eps = 0 is the probability-flow ODE.
"""
import jax
import jax.numpy as jnp

from diffjax.solvers.grids import check_time_grid
from diffjax.solvers.ode import check_field_shape


def euler_maruyama(velocity, score, x0, ts, key, eps, return_trajectory=False):
  """Integrates dX = (v + eps s) dt + sqrt(2 eps) dW over the grid ts.

  Args:
    velocity, score: fields f(x, t) -> (B, ...).
    x0: (B, ...) state at ts[0].
    ts: (N + 1,) increasing times in [0, 1].
    key: PRNG key; step i uses fold_in(key, i).
    eps: a float or a function eps(t) -> scalar >= 0.
    return_trajectory: also return the (N + 1, B, ...) states.

  Returns:
    x at ts[-1], or (x, trajectory). Field evaluations: 2 N (N if eps is 0 everywhere).
  """
  eps_fn = eps if callable(eps) else (lambda t: jnp.asarray(eps, jnp.float32))
  ts = jnp.asarray(check_time_grid(ts), jnp.float32)
  check_field_shape(velocity, x0, ts[0])
  check_field_shape(score, x0, ts[0])

  def body(x, inputs):
    i, t, t_next = inputs
    h = t_next - t
    e = eps_fn(t)
    drift = velocity(x, t) + e * score(x, t)
    noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    x_next = x + h * drift + jnp.sqrt(2 * e * h) * noise
    return x_next, (x_next if return_trajectory else None)

  steps = jnp.arange(ts.shape[0] - 1)
  x1, path = jax.lax.scan(body, x0, (steps, ts[:-1], ts[1:]))
  if return_trajectory:
    return x1, jnp.concatenate([x0[None], path], axis=0)
  return x1
