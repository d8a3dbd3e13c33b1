"""Schrödinger bridges: reference processes, closed-form Gaussian bridges, simulation,
IPF (DSB), iterative Markovian fitting (DSBM) and multi-marginal bridges with iterative
reference refinement (SBIRR). One concept per module."""
from diffjax.bridges.gaussian import GaussianBridge
from diffjax.bridges.gaussian import entropic_cross_covariance
from diffjax.bridges.gaussian import gaussian_bridge
from diffjax.bridges.gaussian import linear_transition
from diffjax.bridges.reference import DRIFT_FAMILIES
from diffjax.bridges.reference import DriftFamily
from diffjax.bridges.reference import Reference
from diffjax.bridges.reference import brownian
from diffjax.bridges.reference import check_reference
from diffjax.bridges.reference import custom_family
from diffjax.bridges.reference import reference_process
from diffjax.bridges.simulate import sde_stepper
from diffjax.bridges.simulate import simulate_backward
from diffjax.bridges.simulate import simulate_forward
