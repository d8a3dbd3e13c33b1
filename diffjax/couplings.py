"""Couplings: how (source, data) pairs are drawn for a training batch.

A coupling is `couple(key, x0, x1) -> (x0, x1)` on (B, ...) arrays, registered by name.
"""
from diffjax.registry import Registry

COUPLINGS = Registry("coupling")


@COUPLINGS.register("independent")
def independent(key, x0, x1):
  """The product coupling rho0 x rho1: pairs are used as drawn."""
  del key
  return x0, x1
