"""Mode coverage of samples against a Gaussian-mixture target: which modes a student keeps.

Each sample is assigned to the mode of largest posterior responsibility
r_k(x) = w_k N(x; mu_k, C_k) / p(x) (the Bayes classifier of the mixture's components); the
share of samples per mode is then compared with the mode's weight w_k.
"""
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from diffjax.data.gaussian_mixture import GaussianMixture


class ModeCoverage(NamedTuple):
  """shares: (K,) fraction of samples assigned to each mode; weights: (K,) the target's
  mode weights; covered: modes whose share is at least `min_ratio` times their weight;
  total_variation: 0.5 sum_k |share_k - w_k| in [0, 1]."""
  shares: np.ndarray
  weights: np.ndarray
  covered: int
  total_variation: float

  def metrics(self, prefix="") -> dict:
    """Scalars for a metrics log: modes covered, total variation, and each mode's share."""
    values = {f"{prefix}modes_covered": self.covered,
              f"{prefix}mode_total_variation": self.total_variation}
    values.update({f"{prefix}mode_share_{k}": float(s) for k, s in enumerate(self.shares)})
    return values


def mode_coverage(samples, mixture: GaussianMixture, min_ratio=0.5) -> ModeCoverage:
  """The mode coverage (`ModeCoverage`) of samples (N, D) against `mixture`."""
  samples = jnp.asarray(samples, jnp.float32)
  modes = np.asarray(jnp.argmax(mixture.component_log_probs(samples), axis=-1))
  k = mixture.weights.shape[0]
  shares = np.bincount(modes, minlength=k) / max(len(modes), 1)
  weights = np.asarray(mixture.weights, np.float64)
  covered = int(np.sum(shares >= min_ratio * weights))
  return ModeCoverage(shares, weights, covered, float(0.5 * np.abs(shares - weights).sum()))
