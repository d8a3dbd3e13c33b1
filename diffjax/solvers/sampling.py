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
from diffjax.solvers.grids import time_grid, uniform_grid

SAMPLERS = Registry("sampler")


class Fields(NamedTuple):
  """velocity(x, t): the ODE drift; score(x, t): grad log rho_t (None if not modelled);
  velocity_and_score(x, t) -> (velocity, score): optional, both from one evaluation of the
  model, used by samplers that need both at the same point (Euler–Maruyama). Set it to None
  when replacing velocity or score with `_replace`."""
  velocity: Callable
  score: Optional[Callable] = None
  velocity_and_score: Optional[Callable] = None

  def drift_terms(self):
    """(x, t) -> (velocity, score), and the field evaluations one call costs."""
    if self.velocity_and_score is not None:
      return self.velocity_and_score, 1
    return (lambda x, t: (self.velocity(x, t), self.score(x, t))), 2


class SampleResult(NamedTuple):
  x: Any
  trajectory: Any
  nfe: Any


def _fixed_step_ode_sampler(method):
  def sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
              grid="uniform", **grid_options):
    del key
    ts = time_grid(grid, num_steps, path, **grid_options)
    out = ode.solve_ode(fields.velocity, x0, ts, method, return_trajectory)
    x, trajectory = out if return_trajectory else (out, None)
    return SampleResult(x, trajectory, ode.number_of_evaluations(method, num_steps))
  sampler.__doc__ = (f"Probability-flow ODE with fixed-step {method}; `grid` is a "
                     "`TIME_GRIDS` name (uniform, edm, log_snr) or an array of times.")
  return sampler


for _method in ode.ODE_SOLVERS:
  SAMPLERS.register(_method, _fixed_step_ode_sampler(_method))


def sample(name, fields, path, x0, key, *, num_steps, return_trajectory=False, **options):
  """Runs the sampler registered as `name` (see the module docstring)."""
  return SAMPLERS.get(name)(fields, path, x0, key, num_steps=num_steps,
                            return_trajectory=return_trajectory, **options)


@SAMPLERS.register("dopri5")
def dopri5_sampler(fields, path, x0, key, *, num_steps=1, return_trajectory=False,
                   rtol=1e-5, atol=1e-5, max_steps=4096):
  """Probability-flow ODE with adaptive Dormand–Prince 5(4); nfe is counted on device.

  num_steps only sets how many equally spaced states the trajectory holds (each interval
  is integrated adaptively); without a trajectory one adaptive solve covers [0, 1].
  """
  del path, key
  from diffjax.solvers.adaptive import dopri5, dopri5_on_grid  # pylint: disable=g-import-not-at-top
  options = dict(rtol=rtol, atol=atol, max_steps=max_steps)
  if return_trajectory:
    x, trajectory, stats = dopri5_on_grid(fields.velocity, x0, uniform_grid(num_steps),
                                          **options)
    return SampleResult(x, trajectory, stats.nfe)
  x, stats = dopri5(fields.velocity, x0, 0.0, 1.0, **options)
  return SampleResult(x, None, stats.nfe)


@SAMPLERS.register("euler_maruyama")
def euler_maruyama_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                           eps=1.0, grid="uniform", **grid_options):
  """dX = (v + eps(t) s) dt + sqrt(2 eps(t)) dW (see `diffjax.solvers.sde`).

  eps: a float >= 0, a function of t, or "reverse_sde" for the path's reverse-time SDE.
  The last step is taken with eps = 0 so the sample is not left with fresh noise.
  """
  from diffjax.solvers.sde import _needs_score, diffusion_level, euler_maruyama  # pylint: disable=g-import-not-at-top
  _needs_score(fields, "euler_maruyama")
  ts = time_grid(grid, num_steps, path, **grid_options)
  level = diffusion_level(eps, path)
  eps_fn = lambda t: jnp.where(t < ts[-2] + 0.5 * (ts[-1] - ts[-2]), level(t), 0.0)
  velocity_and_score, evaluations = fields.drift_terms()
  out = euler_maruyama(velocity_and_score, x0, ts, key, eps_fn, return_trajectory)
  x, trajectory = out if return_trajectory else (out, None)
  return SampleResult(x, trajectory, evaluations * num_steps)


@SAMPLERS.register("pc_langevin")
def pc_langevin_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                        snr=0.16, corrector_steps=1, grid="uniform", **grid_options):
  """Predictor-corrector: Langevin corrector at signal-to-noise ratio `snr`, then an
  ancestral (reverse-diffusion) predictor step (Gaussian paths)."""
  from diffjax.solvers.sde import _needs_score, predictor_corrector  # pylint: disable=g-import-not-at-top
  _needs_score(fields, "pc_langevin")
  ts = time_grid(grid, num_steps, path, **grid_options)
  x, trajectory = predictor_corrector(fields, path, x0, ts, key, snr=snr,
                                      corrector_steps=corrector_steps,
                                      return_trajectory=return_trajectory)
  return SampleResult(x, trajectory, num_steps * (corrector_steps + 1))


@SAMPLERS.register("edm_churn")
def edm_churn_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                      s_churn=10.0, s_min=0.0, s_max=float("inf"), s_noise=1.0,
                      grid="edm", **grid_options):
  """EDM's stochastic Heun sampler with churn (Gaussian paths with alpha > 0)."""
  from diffjax.solvers.sde import edm_stochastic  # pylint: disable=g-import-not-at-top
  ts = time_grid(grid, num_steps, path, **grid_options)
  x, trajectory = edm_stochastic(fields, path, x0, ts, key, s_churn=s_churn, s_min=s_min,
                                 s_max=s_max, s_noise=s_noise,
                                 return_trajectory=return_trajectory)
  return SampleResult(x, trajectory, 2 * num_steps)
