"""Paths between a source distribution (t = 0) and the data (t = 1)."""
from diffjax.paths.interpolants import PATHS
from diffjax.paths.interpolants import Interpolant
from diffjax.paths.interpolants import build_path
from diffjax.paths.interpolants import linear
from diffjax.paths.interpolants import GAMMAS
from diffjax.paths.interpolants import Gamma
from diffjax.paths.interpolants import build_gamma
from diffjax.paths.interpolants import custom_interpolant
from diffjax.paths import gaussian as _gaussian  # Registers the Gaussian diffusion paths.
from diffjax.paths.gaussian import GaussianPath
from diffjax.paths.gaussian import marginal_mixture
