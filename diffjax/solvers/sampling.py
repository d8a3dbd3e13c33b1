"""Samplers: one interface over ODE, SDE and exponential-integrator solvers.

A sampler is registered in `SAMPLERS` and called as

  result = sampler(fields, path, x0, key, num_steps=..., return_trajectory=False, **options)

fields: `Fields(velocity, score)`, plain functions f(x, t) of a state (B, ...) and a scalar
  time (the network already closed over its parameters, an exact oracle, a guided field).
path: the training path (Gaussian-path samplers read alpha/sigma from it; others ignore it).
x0: (B, ...) source samples at t = 0; key: randomness for stochastic samplers.
Returns `SampleResult(x, trajectory, nfe)`: x at t = 1, the (num_steps + 1, B, ...) states
(or None), and the number of field evaluations (a scalar array for adaptive solvers).
"""
from typing import Any, Callable, NamedTuple, Optional

import jax.numpy as jnp

from diffjax.registry import Registry
from diffjax.solvers import ode
from diffjax.solvers.grids import uniform_grid

SAMPLERS = Registry("sampler")


class Fields(NamedTuple):
  """velocity(x, t): the ODE drift; score(x, t): grad log rho_t (None if not modelled)."""
  velocity: Callable
  score: Optional[Callable] = None


class SampleResult(NamedTuple):
  x: Any
  trajectory: Any
  nfe: Any


def _fixed_step_ode_sampler(method):
  def sampler(fields, path, x0, key, *, num_steps, return_trajectory=False):
    del path, key
    ts = uniform_grid(num_steps)
    out = ode.solve_ode(fields.velocity, x0, ts, method, return_trajectory)
    x, trajectory = out if return_trajectory else (out, None)
    return SampleResult(x, trajectory, ode.number_of_evaluations(method, num_steps))
  sampler.__doc__ = f"Probability-flow ODE with fixed-step {method} on a uniform grid."
  return sampler


for _method in ode.ODE_SOLVERS:
  SAMPLERS.register(_method, _fixed_step_ode_sampler(_method))


def sample(name, fields, path, x0, key, *, num_steps, return_trajectory=False, **options):
  """Runs the sampler registered as `name` (see the module docstring)."""
  return SAMPLERS.get(name)(fields, path, x0, key, num_steps=num_steps,
                            return_trajectory=return_trajectory, **options)


@SAMPLERS.register("euler_maruyama")
def euler_maruyama_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                           eps=1.0):
  """dX = (v + eps s) dt + sqrt(2 eps) dW with constant eps >= 0 on a uniform grid.

  The last step is taken with eps = 0 so the sample is not left with fresh noise.
  """
  del path
  from diffjax.solvers.sde import euler_maruyama  # pylint: disable=g-import-not-at-top
  if fields.score is None:
    raise ValueError("euler_maruyama needs a score field; train an objective that models "
                     "the score, or use an ODE sampler.")
  ts = uniform_grid(num_steps)
  eps_fn = lambda t: jnp.where(t < ts[-2] + 0.5 * (ts[-1] - ts[-2]), eps, 0.0)
  out = euler_maruyama(fields.velocity, fields.score, x0, ts, key, eps_fn, return_trajectory)
  x, trajectory = out if return_trajectory else (out, None)
  return SampleResult(x, trajectory, 2 * num_steps)
