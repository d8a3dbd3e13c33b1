"""Additive-noise structural causal models over latent factors: abduction and
intervention (Pearl's three steps of a counterfactual).

CausalDiffAE (Komanduri et al. 2024, Sec. 3.1) maps exogenous noise to causal factors
through mechanisms z_j = f_j(z_pa(j)) + eps_j. A counterfactual of z under do(z_i = v):

  abduction:   eps_j = z_j - f_j(z_pa(j))                 for every j
  action:      z'_i = v
  prediction:  z'_j = f_j(z'_pa(j)) + eps_j               for the descendants j of i,
                                                          in topological order

Factors that are not descendants of i keep their values. Here each f_j is a polynomial of
degree `degree` in each parent (no cross terms), fitted by least squares
(`fit_mechanisms`); a root's mechanism is 0, so eps_j = z_j.
"""
import dataclasses
from typing import Tuple

import jax.numpy as jnp
import numpy as np

from diffjax.causal.graph import CausalGraph


@dataclasses.dataclass(frozen=True)
class AdditiveSCM:
  """graph; weights[j]: (1 + degree * |pa(j)|,) coefficients of f_j on
  [1, z_pa, z_pa^2, ...] (empty for roots)."""
  graph: CausalGraph
  weights: Tuple[np.ndarray, ...]
  degree: int = 1

  def features(self, z, j):
    """(B, 1 + degree |pa(j)|) polynomial features of factor j's parents in z (B, K)."""
    cols = [jnp.ones_like(z[:, :1])]
    for p in self.graph.parents[j]:
      cols += [z[:, p:p + 1] ** d for d in range(1, self.degree + 1)]
    return jnp.concatenate(cols, -1)

  def mechanism(self, z, j):
    """f_j(z_pa(j)) (B,); 0 for a root."""
    if not self.graph.parents[j]:
      return jnp.zeros(z.shape[:1], z.dtype)
    return self.features(z, j) @ jnp.asarray(self.weights[j], z.dtype)

  def abduct(self, z):
    """Exogenous noise eps (B, K) of factors z (B, K)."""
    return jnp.stack([z[:, j] - self.mechanism(z, j) for j in range(z.shape[1])], -1)

  def intervene(self, z, i: int, value):
    """The counterfactual factors (B, K) of z (B, K) under do(z_i = value) (scalar or
    (B,)), propagated to the descendants of i with the abducted noise."""
    eps = self.abduct(z)
    z = z.at[:, i].set(jnp.broadcast_to(jnp.asarray(value, z.dtype), z.shape[:1]))
    for j in self.graph.descendants(i):
      z = z.at[:, j].set(self.mechanism(z, j) + eps[:, j])
    return z


def fit_mechanisms(graph: CausalGraph, z, degree: int = 2) -> AdditiveSCM:
  """The additive SCM of factors z (N, K) on `graph`, each mechanism fitted by least
  squares on polynomial features of its parents."""
  z = jnp.asarray(z, jnp.float32)
  scm = AdditiveSCM(graph, tuple(np.zeros(0) for _ in graph.names), degree)
  weights = []
  for j in range(len(graph.names)):
    if not graph.parents[j]:
      weights.append(np.zeros(0))
      continue
    features = np.asarray(scm.features(z, j), np.float64)
    weights.append(np.linalg.lstsq(features, np.asarray(z[:, j], np.float64), rcond=None)[0])
  return AdditiveSCM(graph, tuple(weights), degree)
