"""Simulating a bridge's SDE forward or backward in time with `integrate`.

A bridge has a forward drift f (dX = f dt + g dW, t increasing) and a backward drift b,
the drift of the time-reversed process (x_{t-h} = x_t + h b(x_t, t) + g sqrt(h) z). Both run
through the one driver `diffjax.solvers.integrate.integrate`: `fields.velocity` is dX/dt
in forward-time units, so the backward pass integrates the reversed grid with velocity -b.
With the library's Euler–Maruyama stepper (`sde_stepper`) this is exactly the
discretisation of "Diffusion Schrödinger Bridge with Applications to Score-Based
Generative Modeling" (De Bortoli, Thornton, Heng & Doucet, NeurIPS 2021, eq. 9-10 with
gamma_k = g^2 h_k / 2): the drift is read at the start of each step. `simulate` is the one
place that maps a direction of travel to a grid and a velocity; trajectory caches, pair
simulation, evaluation and multi-marginal paths all call it.
"""
from typing import Callable

import jax.numpy as jnp

from diffjax.core import Fields, Stepper
from diffjax.solvers.integrate import Solution, integrate
from diffjax.solvers.sde import euler_maruyama

DIRECTIONS = ("forward", "backward")


def sde_stepper(diffusion) -> Stepper:
  """Euler–Maruyama for dX = v(X, t) dt + g(t) dW over a grid of either direction,
  x' = x + (t' - t) v(x, t) + g(t) sqrt(|t' - t|) z on every step: the library's stepper
  (`diffjax.solvers.sde.euler_maruyama`) with eps = g^2 / 2, the velocity read as the
  drift, and noise on the last step too. diffusion: a float g or a function g(t)."""
  g = diffusion if callable(diffusion) else (lambda t: diffusion)
  return euler_maruyama(eps=lambda t: 0.5 * jnp.square(g(t)), correct_drift=False,
                        final_noise=True)


def check_direction(direction):
  if direction not in DIRECTIONS:
    raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}.")
  return direction


def travel_grid(ts, direction):
  """The increasing grid ts (N + 1,) in the order of travel: as is "forward", reversed
  "backward"."""
  return ts if check_direction(direction) == "forward" else ts[::-1]


def simulate(drift: Callable, x, ts, key, diffusion, direction="forward", *,
             stepper: Callable[..., Stepper] = sde_stepper, return_trajectory=True,
             record=None) -> Solution:
  """Runs a bridge's SDE from x (B, D) in the direction of travel.

  Args:
    drift: the drift in the direction of travel, drift(x, t) -> (B, D): the forward drift
      f "forward" (from ts[0] up), the backward drift b "backward" (from ts[-1] down).
    x: (B, D) states at the start: at ts[0] forward, at ts[-1] backward.
    ts: (N + 1,) increasing times in [0, 1].
    key: PRNG key.
    diffusion: g, a float or a function g(t).
    direction: "forward" or "backward".
    stepper: stepper(diffusion) -> a `Stepper` reading fields.velocity (default
      `sde_stepper`; `diffjax.bridges.mean_matching.mean_matching_stepper` also records
      regression targets).
    return_trajectory, record: as in `integrate`.

  Returns:
    integrate's `Solution`; its trajectory (N + 1, B, D) is in the order of travel (row j
    at `travel_grid(ts, direction)[j]`).
  """
  grid = travel_grid(ts, direction)
  velocity = drift if direction == "forward" else (lambda y, t: -drift(y, t))
  return integrate(stepper(diffusion), Fields.of(velocity=velocity), x, grid, key,
                   return_trajectory=return_trajectory, record=record)


def simulate_forward(drift: Callable, x0, ts, key, diffusion, *, return_trajectory=True
                     ) -> Solution:
  """`simulate` forward: dX = drift(x, t) dt + g dW from x0 (B, D) at ts[0]."""
  return simulate(drift, x0, ts, key, diffusion, "forward",
                  return_trajectory=return_trajectory)


def simulate_backward(drift: Callable, x1, ts, key, diffusion, *, return_trajectory=True
                      ) -> Solution:
  """`simulate` backward: the reverse-time SDE with backward drift `drift` from x1 (B, D)
  at ts[-1] down to ts[0]; the trajectory's row j is at time ts[N - j]."""
  return simulate(drift, x1, ts, key, diffusion, "backward",
                  return_trajectory=return_trajectory)
