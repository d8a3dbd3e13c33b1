"""diffjax: generative dynamics in JAX as small, pure, composable functions.

Time convention: t in [0, 1], t = 0 is the source (noise or first marginal), t = 1 is the
data. Components are chosen by name from registries; see the README for the picture.

Importing diffjax imports every module that registers a component, so each registry is
complete after `import diffjax` alone; heavy optional back ends (POT and the torch it
loads, ott-jax, matplotlib, tensorflow-datasets, scikit-learn, tensorboardX, orbax) are
imported inside the functions that use them, which keeps this import cheap.
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
from diffjax import bridges
from diffjax import distillation
from diffjax import graphs
from diffjax import guidance
from diffjax import acceleration
from diffjax import image_metrics
from diffjax import pipeline
from diffjax import restoration
from diffjax import runs
from diffjax import science
from diffjax import timeseries
from diffjax import adaptation
from diffjax import plug_and_play
from diffjax import safety
from diffjax import replay
from diffjax.registry import Registry
from diffjax.registry import UnknownComponentError

__version__ = "0.1.0"
