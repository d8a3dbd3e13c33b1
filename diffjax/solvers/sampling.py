"""The samplers of diffjax, each declared (`diffjax.solvers.sampler`), and `sample`.

  result = sample(name, fields, path, x0, key, num_steps=None, guidance=None,
                  return_trajectory=False, grid=None, record=None, **options)

fields: the model's `Fields` (completed with exact conversions on `path` where the
  sampler needs predictions they lack, so a velocity network can drive DDIM and a noise
  network an ODE solver);
path: the sampling path (Gaussian-path samplers read alpha / sigma from `path.gaussian`);
x0: (B, ...) source samples at t = 0 (or data at t = 1 on a decreasing grid);
num_steps: grid steps (default: the sampler's `default_steps`);
guidance: a `Guidance` (`diffjax.guidance.build_guidance`, or built by hand): its fields
  replace `fields` (pass None for those) and its wrap turns the sampler's stepper into the
  guided one;
grid: a `TIME_GRIDS` name or an explicit (N + 1,) array of times (default: the sampler's
  own grid; `grid_options`, e.g. rho of the edm grid, go in the options);
options: the sampler's keyword options.
Returns `Solution(x, trajectory, nfe, records)` (`diffjax.solvers.integrate`).

The table below declares every continuous sampler; `diffjax.solvers.discrete` declares
the token samplers. Default step counts give a budget of about 100 field evaluations to
first-order samplers and fewer to the higher-order multistep ones (log-SNR grid).
"""
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.solvers.adaptive import dopri5_stepper
from diffjax.solvers.diffrax_adapter import DIFFRAX_SOLVERS, diffrax_stepper
from diffjax.solvers.exponential import ancestral, ddim, dpm_solver_pp
from diffjax.solvers.ode import ODE_SOLVERS, runge_kutta
from diffjax.solvers.sde import edm_churn, euler_maruyama, pc_langevin
from diffjax.solvers.unipc import unipc
from diffjax.solvers.grids import time_grid
from diffjax.solvers.integrate import Solution, integrate
from diffjax.solvers.sampler import SAMPLERS, Sampler, sampler_for


def _runge_kutta(method) -> Sampler:
  tableau = ODE_SOLVERS.get(method)
  return Sampler(lambda path: runge_kutta(method), evaluations=tableau.evals_per_step,
                 order=tableau.order, evaluates_once_at_start=tableau.evals_per_step == 1,
                 default_steps=100 // tableau.evals_per_step)


def _dpm_solver_pp(order, corrector=False) -> Sampler:
  return Sampler(lambda path, **o: dpm_solver_pp(path, order=order, corrector=corrector, **o),
                 evaluations=1, order=order + int(corrector), needs=("data",),
                 evaluates_once_at_start=True, default_grid="log_snr", default_steps=20)


def _nonzero(value) -> bool:
  """Whether a noise option is not the literal zero (a traced value, a function of t or a
  named level counts as nonzero)."""
  return not (isinstance(value, (int, float)) and value == 0)


def _diffrax_adaptive(rtol=None, atol=None, **_):
  return rtol is not None or atol is not None


for _method in ODE_SOLVERS:
  SAMPLERS.register(_method, _runge_kutta(_method))
SAMPLERS.register("dopri5", Sampler(
    lambda path, **o: dopri5_stepper(**o), evaluations=6, order=5, default_steps=1,
    adaptive=True))
SAMPLERS.register("diffrax", Sampler(
    lambda path, **o: diffrax_stepper(**o),
    evaluations=lambda solver="Tsit5", **_: getattr(DIFFRAX_SOLVERS.get(solver),
                                                     "per_step", None),
    order=lambda solver="Tsit5", **_: getattr(DIFFRAX_SOLVERS.get(solver), "order", None),
    default_steps=lambda x0, **o: 1 if _diffrax_adaptive(**o) else 50,
    adaptive=_diffrax_adaptive))
SAMPLERS.register("ddim", Sampler(
    ddim, evaluations=1, order=1, stochastic=lambda eta=0.0, **_: _nonzero(eta),
    needs=("data",), evaluates_once_at_start=True, default_steps=50))
SAMPLERS.register("ancestral", Sampler(
    ancestral, evaluations=1, order=1, stochastic=True, needs=("data",),
    evaluates_once_at_start=True, default_steps=100))
SAMPLERS.register("dpm_solver_pp_1s", _dpm_solver_pp(1))
SAMPLERS.register("dpm_solver_pp_2m", _dpm_solver_pp(2))
SAMPLERS.register("dpm_solver_pp_3m", _dpm_solver_pp(3))
SAMPLERS.register("exponential_pc", _dpm_solver_pp(2, corrector=True))
# UniC raises the predictor's order by one (Zhao et al., Theorem 3.1).
SAMPLERS.register("unipc", Sampler(
    unipc, evaluations=1, order=lambda order=2, corrector=True, **_: order + bool(corrector),
    needs=("data",), evaluates_once_at_start=True, default_grid="log_snr", default_steps=20))
SAMPLERS.register("euler_maruyama", Sampler(
    euler_maruyama, evaluations=1, order=1,
    stochastic=lambda eps=1.0, **_: _nonzero(eps),
    needs=lambda correct_drift=True, **_: (("velocity", "score") if correct_drift
                                            else ("velocity",)),
    evaluates_once_at_start=True, default_steps=100))
SAMPLERS.register("pc_langevin", Sampler(
    pc_langevin, evaluations=lambda corrector_steps=1, **_: corrector_steps + 1, order=1,
    stochastic=True, needs=("score", "data"), default_steps=100))
SAMPLERS.register("edm_churn", Sampler(
    edm_churn, evaluations=2, order=lambda s_churn=10.0, **_: 1 if _nonzero(s_churn) else 2,
    stochastic=lambda s_churn=10.0, **_: _nonzero(s_churn), needs=("data",),
    default_grid="edm", default_steps=40))


def sample(name, fields, path, x0, key=None, *, num_steps=None, guidance=None,
           return_trajectory=False, grid=None, record=None, **options) -> Solution:
  """Runs the sampler registered as `name`, guided by `guidance` if given (see the module
  docstring). An adaptive sampler without a trajectory makes one solve over the grid."""
  grid_options = options.pop("grid_options", {})
  sampler = sampler_for(name, options)
  stepper = sampler.build(path, **options)   # Checks the options first.
  if num_steps is None:
    num_steps = sampler.steps_for(x0, options)
    if num_steps is None:
      raise ConfigError(f"The {name!r} sampler needs num_steps.")
  if guidance is not None:
    if fields is not None and guidance.fields is not None:
      raise ValueError("Give the fields to sample either as `fields` or in the guidance, "
                       "not both (pass fields=None with a guidance that has its own).")
    fields = fields if guidance.fields is None else guidance.fields
    stepper = guidance.wrap(stepper, sampler)
  ts = time_grid(sampler.default_grid if grid is None else grid, num_steps, path,
                 **grid_options)
  if sampler.adaptive and not return_trajectory:
    ts = ts[::ts.shape[0] - 1]
  if guidance is not None or not fields.provides(*stepper.needs):
    fields = complete(fields, path)   # Guidance may read any prediction.
  return integrate(stepper, fields, x0, ts, key, return_trajectory=return_trajectory,
                   record=record)
