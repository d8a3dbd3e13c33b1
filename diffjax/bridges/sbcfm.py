"""SB-CFM: the Schrödinger bridge's drift from one Markovian projection of the entropic-OT
coupling, registered as the bridge method "sbcfm".

"Simulation-free Schrödinger bridges via score and flow matching" (Tong et al., AISTATS
2024): under the Brownian reference of variance sigma^2 per unit time the static bridge is
the entropic OT plan with epsilon = 2 sigma^2 (Bunne et al., `diffjax.bridges.gaussian`),
and the SDE drift of the mixture of Brownian bridges over its pairs is the bridge's drift.
So SB-CFM is IMF's first phase (`diffjax.bridges.imf`) with the minibatch "sinkhorn_ot"
coupling at that epsilon and no further iteration: both networks trained by bridge
matching on freshly coupled minibatches, no simulation.
"""
from diffjax.bridges.imf import FIRST_PHASE_KEYS, imf_cost, two_marginal_imf
from diffjax.bridges.methods import BridgeMethod, register_method
from diffjax.errors import ConfigError

COUPLING = "sinkhorn_ot"


def _check(config):
  if config.bridge.host_coupling:
    raise ConfigError("bridge.host_coupling=True does not apply to bridge.method='sbcfm': "
                      f"its entropic coupling ({COUPLING!r}) is solved on the device; set "
                      "bridge.host_coupling=False.")


SBCFM = register_method(BridgeMethod(
    name="sbcfm", label="SB-CFM", problem="two_marginal", keys=FIRST_PHASE_KEYS,
    phases=lambda setup: two_marginal_imf(setup, COUPLING, num_iterations=0),
    cost=lambda config, num_segments=1: imf_cost(config, num_iterations=0),
    check=_check))
