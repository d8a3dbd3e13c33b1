"""Paths between a source distribution (t = 0) and the data (t = 1), all `diffjax.core.Path`."""
from diffjax.core import GaussianView
from diffjax.core import Path
from diffjax.core import require_gaussian
from diffjax.paths.interpolants import PATHS
from diffjax.paths.interpolants import build_path
from diffjax.paths.interpolants import linear
from diffjax.paths.interpolants import GAMMAS
from diffjax.paths.interpolants import Gamma
from diffjax.paths.interpolants import build_gamma
from diffjax.paths.interpolants import custom_interpolant
from diffjax.paths import gaussian as _gaussian  # Registers the Gaussian diffusion paths.
from diffjax.paths.gaussian import gaussian_path
from diffjax.paths.masked import SCHEDULES as MASKING_SCHEDULES
from diffjax.paths.masked import masking_path
from diffjax.paths import ddpm as _ddpm  # Registers "ddpm_discrete".
from diffjax.paths.ddpm import DDPMSchedule
from diffjax.paths.ddpm import diffusers_grid
from diffjax.paths.ddpm import read_schedule
from diffjax.paths.ddpm import schedule_path
