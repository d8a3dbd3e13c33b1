"""Causal factors and counterfactuals (CausalDiffAE): the DAG (`graph`), additive-noise
mechanisms with abduction and intervention (`mechanisms`), and counterfactual decoding by
DDIM inversion (`counterfactual`), and the encoder to factors (`encoder`)."""
from diffjax.causal.counterfactual import counterfactual, decode, invert
from diffjax.causal.encoder import FactorEncoder, alignment_loss
from diffjax.causal.graph import CausalGraph, causal_graph
from diffjax.causal.mechanisms import AdditiveSCM, fit_mechanisms
