"""Solvers for sampling: they integrate plain fields f(x, t), never see parameters."""
from diffjax.solvers.grids import TIME_GRIDS
from diffjax.solvers.grids import check_time_grid
from diffjax.solvers.grids import uniform_grid
from diffjax.solvers.ode import ODE_SOLVERS
from diffjax.solvers.ode import FixedStepSolver
from diffjax.solvers.ode import euler_step
from diffjax.solvers.ode import heun_step
from diffjax.solvers.ode import number_of_evaluations
from diffjax.solvers.ode import solve_ode
from diffjax.solvers.sampling import SAMPLERS
from diffjax.solvers.sampling import Fields
from diffjax.solvers.sampling import SampleResult
from diffjax.solvers.sampling import sample
from diffjax.solvers.sde import euler_maruyama
from diffjax.solvers import exponential as _exponential  # Registers DDIM, DPM-Solver++.
from diffjax.solvers import diffrax_adapter as _diffrax_adapter  # Registers "diffrax".
from diffjax.solvers.adaptive import dopri5
from diffjax.solvers.grids import time_grid
from diffjax.solvers.ode import check_field_shape
from diffjax.solvers.sde import edm_stochastic
from diffjax.solvers.sde import predictor_corrector
