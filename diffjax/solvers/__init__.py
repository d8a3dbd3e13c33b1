"""Samplers: steppers (`diffjax.core.Stepper`) run by the one driver `integrate`; they see
fields f(x, t), never parameters."""
from diffjax.solvers.integrate import Solution
from diffjax.solvers.integrate import check_fields
from diffjax.solvers.integrate import integrate
from diffjax.solvers.grids import TIME_GRIDS
from diffjax.solvers.grids import check_time_grid
from diffjax.solvers.grids import time_grid
from diffjax.solvers.grids import uniform_grid
from diffjax.solvers.ode import ODE_SOLVERS
from diffjax.solvers.ode import ButcherTableau
from diffjax.solvers.ode import runge_kutta
from diffjax.solvers.ode import runge_kutta_step
from diffjax.solvers.adaptive import dopri5
from diffjax.solvers.adaptive import dopri5_stepper
from diffjax.solvers.exponential import ancestral
from diffjax.solvers.exponential import ddim
from diffjax.solvers.exponential import ddim_step
from diffjax.solvers.exponential import dpm_solver_pp
from diffjax.solvers.sde import edm_churn
from diffjax.solvers.sde import euler_maruyama
from diffjax.solvers.sde import pc_langevin
from diffjax.solvers.unipc import unipc
from diffjax.solvers.sampler import SAMPLERS
from diffjax.solvers.sampler import Guidance
from diffjax.solvers.sampler import Sampler
from diffjax.solvers.sampler import sampler_for
from diffjax.solvers.sampling import sample
from diffjax.solvers import discrete as _discrete  # Registers the token samplers.
from diffjax.solvers import flow_maps as _flow_maps  # Registers "consistency" and "flow_map".
