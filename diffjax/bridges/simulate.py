"""Simulating a bridge's SDE forward or backward in time with `integrate`.

A bridge has a forward drift f (dX = f dt + g dW, t increasing) and a backward drift b,
the drift of the time-reversed process (x_{t-h} = x_t + h b(x_t, t) + g sqrt(h) z). Both run
through the one driver `diffjax.solvers.integrate.integrate` with the library's
Euler–Maruyama stepper: `fields.velocity` is dX/dt in forward-time units, so the backward
pass integrates a decreasing grid with velocity -b. This is exactly the discretisation of "Diffusion
Schrödinger Bridge with Applications to Score-Based Generative Modeling" (De Bortoli,
Thornton, Heng & Doucet, NeurIPS 2021, eq. 9-10 with gamma_k = g^2 h_k / 2): the drift is
read at the start of each step.
"""
from typing import Callable

import jax
import jax.numpy as jnp

from diffjax.core import Fields, Stepper
from diffjax.solvers.integrate import Solution, integrate
from diffjax.solvers.sde import euler_maruyama


def sde_stepper(diffusion) -> Stepper:
  """Euler–Maruyama for dX = v(X, t) dt + g(t) dW over a grid of either direction,
  x' = x + (t' - t) v(x, t) + g(t) sqrt(|t' - t|) z on every step: the library's stepper
  (`diffjax.solvers.sde.euler_maruyama`) with eps = g^2 / 2, the velocity read as the
  drift, and noise on the last step too. diffusion: a float g or a function g(t)."""
  g = diffusion if callable(diffusion) else (lambda t: diffusion)
  return euler_maruyama(eps=lambda t: 0.5 * jnp.square(g(t)), correct_drift=False,
                        final_noise=True)


def simulate_forward(drift: Callable, x0, ts, key, diffusion, *, return_trajectory=True
                     ) -> Solution:
  """Runs dX = drift(x, t) dt + g dW from x0 (B, D) at ts[0] over increasing ts (N + 1,).
  Returns integrate's Solution (trajectory (N + 1, B, D) at ts if saved)."""
  return integrate(sde_stepper(diffusion), Fields.of(velocity=drift), x0, ts, key,
                   return_trajectory=return_trajectory)


def simulate_backward(drift: Callable, x1, ts, key, diffusion, *, return_trajectory=True
                      ) -> Solution:
  """Runs the reverse-time SDE with backward drift `drift(x, t)` from x1 (B, D) at ts[-1]
  down to ts[0] (ts (N + 1,) increasing). The returned trajectory is in the order of
  travel (its row j is at time ts[N - j])."""
  fields = Fields.of(velocity=lambda x, t: -drift(x, t))
  return integrate(sde_stepper(diffusion), fields, x1, ts[::-1], key,
                   return_trajectory=return_trajectory)
