"""Fixed-step ODE solvers for dx/dt = f(x, t), run on device with `lax.scan`.

Solvers take a plain field `f(x, t) -> dx/dt` (a network closed over its parameters, an
analytic velocity, a guided combination), never parameters. x: (B, ...), t: scalar.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from diffjax.registry import Registry
from diffjax.solvers.grids import check_time_grid

ODE_SOLVERS = Registry("ODE solver")


class FixedStepSolver(NamedTuple):
  """step(f, x, t, t_next) -> x_next; `evals_per_step` field calls; global `order`."""
  step: Callable
  evals_per_step: int
  order: int


def euler_step(f, x, t, t_next):
  """Explicit Euler: x + h f(x, t)."""
  return x + (t_next - t) * f(x, t)


def heun_step(f, x, t, t_next):
  """Heun's method (explicit trapezoidal rule), second order."""
  h = t_next - t
  k1 = f(x, t)
  k2 = f(x + h * k1, t_next)
  return x + 0.5 * h * (k1 + k2)


def midpoint_step(f, x, t, t_next):
  """Explicit midpoint rule, second order."""
  h = t_next - t
  return x + h * f(x + 0.5 * h * f(x, t), t + 0.5 * h)


def rk4_step(f, x, t, t_next):
  """The classical fourth-order Runge–Kutta method (Hairer, Nørsett & Wanner, "Solving
  Ordinary Differential Equations I", Table 1.2, right)."""
  h = t_next - t
  k1 = f(x, t)
  k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
  k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
  k4 = f(x + h * k3, t_next)
  return x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


ODE_SOLVERS.register("euler", FixedStepSolver(euler_step, 1, 1))
ODE_SOLVERS.register("heun", FixedStepSolver(heun_step, 2, 2))
ODE_SOLVERS.register("midpoint", FixedStepSolver(midpoint_step, 2, 2))
ODE_SOLVERS.register("rk4", FixedStepSolver(rk4_step, 4, 4))


def check_field_shape(f, x, t):
  """Traces f once (no computation) and refuses an output not shaped like x."""
  out = jax.eval_shape(f, x, t)
  if out.shape != x.shape:
    raise ValueError(f"The field returned shape {out.shape} for a state of shape "
                     f"{x.shape}; it must return the state's shape.")


def solve_ode(f, x0, ts, method="heun", return_trajectory=False):
  """Integrates dx/dt = f(x, t) over the grid ts from x0.

  Args:
    f: field f(x, t) -> array shaped like x; t is a float32 scalar.
    x0: (B, ...) initial state at ts[0].
    ts: (N + 1,) strictly monotone times in [0, 1].
    method: a name in `ODE_SOLVERS`.
    return_trajectory: also return the (N + 1, B, ...) states at every grid time.

  Returns:
    x at ts[-1], or (x, trajectory). Number of field evaluations: N * evals_per_step.
  """
  solver = ODE_SOLVERS.get(method)
  ts = jnp.asarray(check_time_grid(ts), jnp.float32)
  check_field_shape(f, x0, ts[0])

  def body(x, times):
    x_next = solver.step(f, x, times[0], times[1])
    return x_next, (x_next if return_trajectory else None)

  x1, path = jax.lax.scan(body, x0, (ts[:-1], ts[1:]))
  if return_trajectory:
    return x1, jnp.concatenate([x0[None], path], axis=0)
  return x1


def number_of_evaluations(method, num_steps):
  """Field evaluations used by `solve_ode` with `num_steps` steps of `method`."""
  return ODE_SOLVERS.get(method).evals_per_step * num_steps
