"""Training objectives: what the network regresses on a path."""
from diffjax.objectives import flow_matching as _flow_matching  # Registers objectives.
from diffjax.objectives.base import OBJECTIVES
from diffjax.objectives.base import Objective
from diffjax.objectives.base import build_objective
from diffjax.objectives.flow_matching import flow_matching
from diffjax.objectives.time_sampling import TIME_SAMPLERS
from diffjax.objectives import interpolant as _interpolant  # Registers "interpolant".
from diffjax.objectives.interpolant import interpolant
from diffjax.objectives import score_matching as _score_matching  # Registers score matching, edm.
from diffjax.objectives.score_matching import WEIGHTINGS
from diffjax.objectives.score_matching import denoising_score_matching
from diffjax.objectives.score_matching import edm_objective
from diffjax.objectives import masked as _masked  # Registers "masked_diffusion".
from diffjax.objectives.masked import masked_diffusion
from diffjax.objectives import autoregressive as _autoregressive  # Registers "autoregressive".
from diffjax.objectives.autoregressive import autoregressive
