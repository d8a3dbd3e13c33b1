"""Time grids for fixed-step solvers: increasing sequences in [0, 1]."""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.registry import Registry

TIME_GRIDS = Registry("time grid")


@TIME_GRIDS.register("uniform")
def uniform_grid(num_steps, t_start=0.0, t_end=1.0):
  """num_steps + 1 equally spaced times from t_start to t_end."""
  return jnp.linspace(t_start, t_end, num_steps + 1)


def check_time_grid(ts):
  """Refuses a concrete grid outside [0, 1] or not strictly monotone; returns ts.

  Grids that are tracers (built inside `jit`) cannot be inspected and pass through.
  """
  try:
    values = np.asarray(ts, np.float64)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return ts
  if values.ndim != 1 or values.size < 2:
    raise ValueError(f"A time grid must be a 1D array of at least 2 times; got shape "
                     f"{values.shape}.")
  if values.min() < 0 or values.max() > 1:
    raise ValueError(f"Time grid values must lie in [0, 1]; got min {values.min():g}, "
                     f"max {values.max():g}.")
  steps = np.diff(values)
  if not (np.all(steps > 0) or np.all(steps < 0)):
    raise ValueError(f"A time grid must be strictly monotone; got {values.tolist()}.")
  return ts
