"""Training objectives: what the network regresses on a path."""
from diffjax.objectives import flow_matching as _flow_matching  # Registers objectives.
from diffjax.objectives.base import OBJECTIVES
from diffjax.objectives.base import Objective
from diffjax.objectives.base import build_objective
from diffjax.objectives.flow_matching import flow_matching
from diffjax.objectives.time_sampling import TIME_SAMPLERS
