"""diffjax: generative dynamics in JAX as small, pure, composable functions.

Time convention: t in [0, 1], t = 0 is the source (noise or first marginal), t = 1 is the
data. Components are chosen by name from registries; see the README for the picture.
"""
from diffjax import couplings
from diffjax import data
from diffjax import fields
from diffjax import likelihood
from diffjax import metrics
from diffjax import models
from diffjax import objectives
from diffjax import plotting
from diffjax import paths
from diffjax import solvers
from diffjax import train
from diffjax.registry import Registry
from diffjax.registry import UnknownComponentError

__version__ = "0.1.0"
