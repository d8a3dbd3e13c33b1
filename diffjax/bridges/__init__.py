"""Schrödinger bridges: reference processes, closed-form Gaussian bridges, simulation,
IPF (DSB), iterative Markovian fitting (DSBM), SB-CFM and multi-marginal bridges with
iterative reference refinement (SBIRR). One concept per module:

  reference        reference SDEs dX = f(params, x, t) dt + g dW and drift families
  gaussian         the closed-form bridge between two Gaussians (Brownian or linear)
  simulate         the one Euler–Maruyama simulation, forward or backward, on `integrate`
  mean_matching    DSB's regression targets and trajectory cache
  bridge_matching  DSBM's Markovian-projection loss on the Brownian-bridge path
  methods          `BRIDGE_METHODS`: each method's problem, keys, check, phases, drifts
                   and cost in network evaluations
  ipf, imf, sbcfm  the two-marginal methods (engine phases and their registration)
  multimarginal    piecewise bridges through snapshots
  refinement       the maximum-likelihood refit of a reference drift
  sbirr            SBIRR's outer loop as engine phases ("sbirr", "multimarginal")
  systems          simulated snapshots of stochastic systems
  problems         `BRIDGE_DATA`: what a method bridges, built from a config
  config           every key the family reads, checked before anything is built
  evaluation       paths of learned drifts, their values and figures
  studies          the tables of several runs (`experiments.bridge_studies`)
  host_coupling    a prefetching host stage of minibatch-OT pairs
  affine_drift     the "time_affine" model (the family of Gaussian bridge drifts)
  metrics, plots, linalg
"""
from diffjax.bridges import affine_drift as _affine_drift  # Registers "time_affine".
from diffjax.bridges import sbcfm as _sbcfm  # Registers "sbcfm".
from diffjax.bridges.bridge_matching import bridge_matching_loss
from diffjax.bridges.bridge_matching import brownian_bridge
from diffjax.bridges.bridge_matching import simulate_pairs
from diffjax.bridges.config import build_problem
from diffjax.bridges.config import check_bridge_config
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
from diffjax.bridges.methods import BRIDGE_METHODS
from diffjax.bridges.methods import BridgeMethod
from diffjax.bridges.methods import BridgePhases
from diffjax.bridges.methods import BridgeSetup
from diffjax.bridges.methods import PhaseCost
from diffjax.bridges.methods import network_evaluations
from diffjax.bridges.methods import register_method
from diffjax.bridges.metrics import earth_movers_distance
from diffjax.bridges.problems import BRIDGE_DATA
from diffjax.bridges.problems import SnapshotProblem
from diffjax.bridges.problems import TwoMarginalProblem
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
from diffjax.bridges.simulate import simulate
from diffjax.bridges.simulate import simulate_backward
from diffjax.bridges.simulate import simulate_forward
from diffjax.bridges.systems import SNAPSHOT_SYSTEMS
from diffjax.bridges.systems import simulate_snapshots
