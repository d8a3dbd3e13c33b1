"""Time grids for samplers: increasing sequences in [0, 1] from 0 to 1 (`integrate` also
runs decreasing ones, e.g. a reversed grid for likelihoods).

Grids are built by name with `time_grid(grid, num_steps, path)`: "uniform" in t, "edm"
(rho-spaced noise levels) and "log_snr" (uniform in lambda = log(alpha / sigma)); the last
two need a Gaussian path, whose log-SNR is inverted by bisection on device.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.core import require_gaussian
from diffjax.registry import Registry

TIME_GRIDS = Registry("time grid")


@TIME_GRIDS.register("uniform")
def uniform_grid(num_steps, t_start=0.0, t_end=1.0, path=None):
  """num_steps + 1 equally spaced times from t_start to t_end (path is ignored)."""
  del path
  return jnp.linspace(t_start, t_end, num_steps + 1)


# Interior grid points keep |log-SNR| below this, so their times stay distinct in float32
# even on paths whose log-SNR is infinite at an endpoint (rectified flow).
MAX_ABS_LOG_SNR = 12.0


def _pin_endpoints(ts):
  return ts.at[0].set(0.0).at[-1].set(1.0)


@TIME_GRIDS.register("edm")
def edm_grid(num_steps, path=None, rho=7.0):
  """Times at EDM's noise levels sigma~_i = (sigma~_max^(1/rho) + i/N (sigma~_min^(1/rho)
  - sigma~_max^(1/rho)))^rho, sigma~ = sigma / alpha ("Elucidating the Design Space of
  Diffusion-Based Generative Models", Karras et al., eq. 5), mapped back to t."""
  view = require_gaussian(path, "The 'edm' time grid")
  level = lambda t: jnp.exp(-jnp.clip(view.log_snr(t), -MAX_ABS_LOG_SNR, MAX_ABS_LOG_SNR))
  hi, lo = level(0.0) ** (1 / rho), level(1.0) ** (1 / rho)
  levels = (hi + jnp.linspace(0.0, 1.0, num_steps + 1) * (lo - hi)) ** rho
  return _pin_endpoints(view.time_at_log_snr(-jnp.log(levels)))


@TIME_GRIDS.register("log_snr")
def log_snr_grid(num_steps, path=None):
  """Times with lambda(t) uniform between lambda(0) and lambda(1) (DPM-Solver's
  "logSNR" step schedule, Lu et al., "DPM-Solver", Sec. 3.3)."""
  view = require_gaussian(path, "The 'log_snr' time grid")
  lo, hi = (jnp.clip(view.log_snr(t), -MAX_ABS_LOG_SNR, MAX_ABS_LOG_SNR) for t in (0.0, 1.0))
  lams = jnp.linspace(lo, hi, num_steps + 1)
  return _pin_endpoints(view.time_at_log_snr(lams))


def time_grid(grid, num_steps, path=None, **options):
  """A grid by name (`TIME_GRIDS`) or an explicit (N + 1,) array, checked and float32."""
  if isinstance(grid, str):
    ts = TIME_GRIDS.get(grid)(num_steps, path=path, **options)
  else:
    ts = jnp.asarray(grid, jnp.float32)
  return jnp.asarray(check_time_grid(ts), jnp.float32)


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
