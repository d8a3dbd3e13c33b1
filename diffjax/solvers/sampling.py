"""The sampler registry: every sampler is a `Stepper` built by name, run by `integrate`.

  result = sample(name, fields, path, x0, key, num_steps=..., return_trajectory=False,
                  grid=None, **options)

fields: the model's `Fields` (completed with exact conversions on `path`, so a velocity
  network can drive DDIM and a noise network an ODE solver);
path: the sampling path (Gaussian-path samplers read alpha / sigma from `path.gaussian`);
x0: (B, ...) source samples at t = 0 (or data at t = 1 on a decreasing grid);
grid: a `TIME_GRIDS` name or an explicit (N + 1,) array of times (default: the sampler's
  own grid); options: the sampler's keyword options.
Returns `Solution(x, trajectory, nfe, records)` (`diffjax.solvers.integrate`).

A new sampler is one stepper factory `build(path, **options) -> Stepper` registered with
`SAMPLERS.register(name, Sampler(build, default_grid))`.
"""
from typing import Callable, NamedTuple

from diffjax.fields import complete
from diffjax.registry import Registry
from diffjax.solvers.adaptive import dopri5_stepper
from diffjax.solvers.diffrax_adapter import diffrax_stepper
from diffjax.solvers.exponential import ancestral, ddim, dpm_solver_pp
from diffjax.solvers.ode import ODE_SOLVERS, runge_kutta
from diffjax.solvers.sde import edm_churn, euler_maruyama, pc_langevin
from diffjax.solvers.unipc import unipc
from diffjax.solvers.grids import time_grid
from diffjax.solvers.integrate import Solution, integrate


class Sampler(NamedTuple):
  """build(path, **options) -> Stepper, and the grid it runs on by default. An adaptive
  sampler's grid only says where a trajectory is recorded: without one it takes the grid's
  end points only (one adaptive solve)."""
  build: Callable
  default_grid: str = "uniform"
  adaptive: bool = False


SAMPLERS = Registry("sampler")

for _method in ODE_SOLVERS:
  SAMPLERS.register(_method, Sampler(lambda path, _m=_method: runge_kutta(_m)))
SAMPLERS.register("dopri5", Sampler(lambda path, **o: dopri5_stepper(**o),
                                     adaptive=True))
SAMPLERS.register("diffrax", Sampler(lambda path, **o: diffrax_stepper(**o),
                                     adaptive=True))
SAMPLERS.register("ddim", Sampler(ddim))
SAMPLERS.register("ancestral", Sampler(ancestral))
SAMPLERS.register("dpm_solver_pp_1s", Sampler(
    lambda path, **o: dpm_solver_pp(path, order=1, **o), "log_snr"))
SAMPLERS.register("dpm_solver_pp_2m", Sampler(
    lambda path, **o: dpm_solver_pp(path, order=2, **o), "log_snr"))
SAMPLERS.register("dpm_solver_pp_3m", Sampler(
    lambda path, **o: dpm_solver_pp(path, order=3, **o), "log_snr"))
SAMPLERS.register("exponential_pc", Sampler(
    lambda path, **o: dpm_solver_pp(path, order=2, corrector=True, **o),
    "log_snr"))
SAMPLERS.register("unipc", Sampler(unipc, "log_snr"))
SAMPLERS.register("euler_maruyama", Sampler(euler_maruyama))
SAMPLERS.register("pc_langevin", Sampler(pc_langevin))
SAMPLERS.register("edm_churn", Sampler(edm_churn, "edm"))


def sample(name, fields, path, x0, key=None, *, num_steps=None, return_trajectory=False,
           grid=None, record=None, **options) -> Solution:
  """Runs the sampler registered as `name` (see the module docstring). `grid` options
  (e.g. rho of the edm grid) go in `grid_options`. num_steps may be omitted only for an
  adaptive sampler (one solve from t = 0 to 1)."""
  entry = SAMPLERS.get(name)
  if num_steps is None:
    if not entry.adaptive:
      raise ValueError(f"The {name!r} sampler needs num_steps.")
    num_steps = 1
  grid_options = options.pop("grid_options", {})
  stepper = entry.build(path, **options)
  ts = time_grid(entry.default_grid if grid is None else grid, num_steps, path,
                 **grid_options)
  if entry.adaptive and not return_trajectory:
    ts = ts[::ts.shape[0] - 1]
  return integrate(stepper, complete(fields, path), x0, ts, key,
                   return_trajectory=return_trajectory, record=record)
