"""Any diffrax ODE solver as a diffjax sampler (diffrax is imported only when used).

  SAMPLERS.get("diffrax")(fields, path, x0, key, num_steps=..., solver="Tsit5",
                          rtol=None, atol=None)
With rtol/atol the step size is adaptive (diffrax's PIDController, NFE counted by
diffrax); otherwise `num_steps` equal steps from t = 0 to 1. The reported nfe is computed
from diffrax's step count and the solver's stages (its step count for unlisted solvers).
"""
import jax.numpy as jnp

from diffjax.solvers.sampling import SAMPLERS, SampleResult


def diffrax_solve(velocity, x0, *, solver="Tsit5", num_steps=None, rtol=None, atol=None,
                  t0=0.0, t1=1.0, max_steps=4096, saveat_ts=None):
  """Solves dx/dt = velocity(x, t) with `diffrax.diffeqsolve`; returns the solution."""
  import diffrax  # pylint: disable=g-import-not-at-top
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


@SAMPLERS.register("diffrax")
def diffrax_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                    solver="Tsit5", rtol=None, atol=None, max_steps=4096):
  """Probability-flow ODE with a diffrax solver (class name), fixed or adaptive steps."""
  del path, key
  saveat_ts = jnp.linspace(0.0, 1.0, num_steps + 1) if return_trajectory else None
  sol = diffrax_solve(fields.velocity, x0, solver=solver, num_steps=num_steps, rtol=rtol,
                      atol=atol, max_steps=max_steps, saveat_ts=saveat_ts)
  per_step = _EVALS_PER_STEP.get(solver)
  steps = sol.stats["num_steps"]
  nfe = steps if per_step is None else per_step[0] + per_step[1] * steps
  return SampleResult(sol.ys[-1], sol.ys if return_trajectory else None, nfe)


# (initial, per attempted step) field evaluations of diffrax's explicit solvers
# (first-same-as-last methods pay one evaluation up front). Unknown solvers report steps.
_EVALS_PER_STEP = {"Euler": (0, 1), "Heun": (0, 2), "Midpoint": (0, 2), "Ralston": (0, 2),
                   "Bosh3": (1, 3), "Tsit5": (1, 6), "Dopri5": (1, 6), "Dopri8": (0, 13)}
