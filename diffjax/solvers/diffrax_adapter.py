"""Any diffrax ODE solver as a diffjax stepper (diffrax, an optional peer, is imported only
when this stepper is built).

  sample("diffrax", fields, path, x0, num_steps=..., solver="Tsit5", rtol=None, atol=None)
With rtol/atol the step size is adaptive (diffrax's PIDController, NFE counted by diffrax);
otherwise each grid interval is one step of the solver. The reported nfe is computed from
diffrax's step count and the solver's stages (its step count for unlisted solvers).
"""
import importlib
from typing import NamedTuple

import jax.numpy as jnp

from diffjax.core import stateless


class DiffraxSolver(NamedTuple):
  """What diffjax knows of one of diffrax's explicit solvers: field evaluations up front
  (first-same-as-last methods pay one) and per attempted step, and the order."""
  initial: int
  per_step: int
  order: int


# Unlisted solvers report their step count as nfe.
DIFFRAX_SOLVERS = {"Euler": DiffraxSolver(0, 1, 1), "Heun": DiffraxSolver(0, 2, 2),
                   "Midpoint": DiffraxSolver(0, 2, 2), "Ralston": DiffraxSolver(0, 2, 2),
                   "Bosh3": DiffraxSolver(1, 3, 3), "Tsit5": DiffraxSolver(1, 6, 5),
                   "Dopri5": DiffraxSolver(1, 6, 5), "Dopri8": DiffraxSolver(0, 13, 8)}


def _diffrax():
  try:
    return importlib.import_module("diffrax")
  except ImportError:
    raise ValueError("The 'diffrax' sampler needs the optional peer diffrax: "
                     "pip install diffrax.") from None


def diffrax_solve(velocity, x0, *, solver="Tsit5", num_steps=None, rtol=None, atol=None,
                  t0=0.0, t1=1.0, max_steps=4096, saveat_ts=None):
  """Solves dx/dt = velocity(x, t) with `diffrax.diffeqsolve`; returns the solution."""
  diffrax = _diffrax()
  try:
    solver_obj = getattr(diffrax, solver)()
  except AttributeError:
    raise ValueError(f"Unknown diffrax solver {solver!r}; give a class name of diffrax "
                     "such as Euler, Heun, Midpoint, Ralston, Bosh3, Tsit5, Dopri5, "
                     "Dopri8.") from None
  term = diffrax.ODETerm(lambda t, y, args: velocity(y, t))
  if rtol is not None or atol is not None:
    controller = diffrax.PIDController(rtol=rtol or 1e-5, atol=atol or 1e-5)
    dt0 = None
  else:
    controller = diffrax.ConstantStepSize()
    dt0 = (t1 - t0) / num_steps
  saveat = (diffrax.SaveAt(ts=saveat_ts) if saveat_ts is not None
            else diffrax.SaveAt(t1=True))
  return diffrax.diffeqsolve(term, solver_obj, t0, t1, dt0, x0, stepsize_controller=controller,
                             saveat=saveat, max_steps=max_steps)


def diffrax_stepper(solver="Tsit5", rtol=None, atol=None, max_steps=4096):
  """Each grid interval [t, t_next] solved by diffrax's `solver` (one fixed step, or an
  adaptive solve with rtol / atol)."""
  _diffrax()
  known = DIFFRAX_SOLVERS.get(solver)

  def step(fields, x, t, t_next, key):
    del key
    sol = diffrax_solve(fields.velocity, x, solver=solver, num_steps=1, rtol=rtol,
                        atol=atol, t0=t, t1=t_next, max_steps=max_steps)
    steps = jnp.asarray(sol.stats["num_steps"], jnp.int32)
    nfe = steps if known is None else known.initial + known.per_step * steps
    return sol.ys[-1], nfe

  return stateless(step)
