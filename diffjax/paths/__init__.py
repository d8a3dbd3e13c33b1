"""Paths between a source distribution (t = 0) and the data (t = 1)."""
from diffjax.paths.interpolants import PATHS
from diffjax.paths.interpolants import Interpolant
from diffjax.paths.interpolants import build_path
from diffjax.paths.interpolants import linear
