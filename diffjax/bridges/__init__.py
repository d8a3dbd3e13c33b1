"""Schrödinger bridges: reference processes, closed-form Gaussian bridges, simulation,
IPF (DSB), iterative Markovian fitting (DSBM) and multi-marginal bridges with iterative
reference refinement (SBIRR). One concept per module:

  reference        reference SDEs dX = f(params, x, t) dt + g dW and drift families
  gaussian         the closed-form bridge between two Gaussians (Brownian or linear)
  simulate         Euler–Maruyama forward and backward on `integrate`
  mean_matching    DSB's regression targets and trajectory cache
  ipf              IPF's alternating half-iterations as engine phases
  bridge_matching  DSBM's Markovian-projection loss and pair simulation
  imf              iterative Markovian fitting (and SB-CFM) as engine phases
  multimarginal    piecewise bridges through snapshots
  refinement       the maximum-likelihood refit of a reference drift
  sbirr            SBIRR's outer loop as engine phases
  host_coupling    a prefetching host stage of minibatch-OT pairs
  affine_drift     the "time_affine" model (the family of Gaussian bridge drifts)
  evaluation, metrics, plots
"""
from diffjax.bridges import affine_drift as _affine_drift  # Registers "time_affine".
from diffjax.bridges.bridge_matching import bridge_matching_loss
from diffjax.bridges.bridge_matching import simulate_pairs
from diffjax.bridges.gaussian import GaussianBridge
from diffjax.bridges.gaussian import entropic_cross_covariance
from diffjax.bridges.gaussian import gaussian_bridge
from diffjax.bridges.gaussian import linear_transition
from diffjax.bridges.imf import imf_schedule
from diffjax.bridges.ipf import ipf_phases
from diffjax.bridges.ipf import ipf_schedule
from diffjax.bridges.mean_matching import TrajectoryCache
from diffjax.bridges.mean_matching import mean_matching_loss
from diffjax.bridges.mean_matching import simulate_cache
from diffjax.bridges.metrics import earth_movers_distance
from diffjax.bridges.reference import DRIFT_FAMILIES
from diffjax.bridges.reference import DriftFamily
from diffjax.bridges.reference import Reference
from diffjax.bridges.reference import brownian
from diffjax.bridges.reference import check_reference
from diffjax.bridges.reference import custom_family
from diffjax.bridges.reference import reference_process
from diffjax.bridges.refinement import refit_reference
from diffjax.bridges.sbirr import sbirr_phases
from diffjax.bridges.simulate import sde_stepper
from diffjax.bridges.simulate import simulate_backward
from diffjax.bridges.simulate import simulate_forward
