"""Compute accounting and scaling-law fits for IsoFLOP studies.

Compute is counted by XLA's cost analysis of the compiled training computation (the loss
and its gradient for one batch: forward and backward, every matrix product, attention
score and softmax), so two objectives on the same network are counted the same way;
`six_nd` gives the usual 6 N D estimate ("Scaling Laws for Neural Language Models",
Kaplan et al., section 2.1) with N the non-embedding parameters, for comparison.

An IsoFLOP study ("Training Compute-Optimal Large Language Models", Hoffmann et al.,
section 3.2) trains several model sizes at each compute budget; the best loss at each
budget traces the compute frontier, fitted here as a power law L(C) = A C^(-alpha) in
log-log space. Two objectives' frontiers give the compute multiple at which one reaches
the other's loss ("Scaling up Masked Diffusion Models on Text", Nie et al., section 3).

  flops = xla_flops(jax.value_and_grad(loss), params, batch)   # per training step
  fit = fit_power_law(compute, loss)                           # PowerLaw(A, alpha)
  multiple = compute_multiple(fit_ar, fit_md, loss_value)      # C_md / C_ar at that loss
"""
from typing import NamedTuple, Sequence

import jax
import numpy as np


def xla_flops(fn, *args) -> float:
  """FLOPs of one call fn(*args) by XLA's cost analysis of the compiled program (args
  may be arrays or jax.ShapeDtypeStruct)."""
  analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older jax: one dict per computation.
    analysis = analysis[0]
  return float(analysis["flops"])


def non_embedding_parameters(params, embedding_names=("embedding", "position_embedding")
                             ) -> int:
  """Parameters whose path names none of `embedding_names` (token and position tables)."""
  total = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    if not any(n in embedding_names for n in names):
      total += int(np.prod(leaf.shape))
  return total


def six_nd(num_parameters: int, num_tokens: float) -> float:
  """6 N D: forward and backward FLOPs of N parameters on D tokens (Kaplan et al.)."""
  return 6.0 * num_parameters * num_tokens


class PowerLaw(NamedTuple):
  """loss(C) = scale * C^(-exponent)."""
  scale: float
  exponent: float

  def loss(self, compute):
    return self.scale * np.asarray(compute, np.float64) ** (-self.exponent)

  def compute(self, loss):
    """The compute at which the law reaches `loss`."""
    return (self.scale / np.asarray(loss, np.float64)) ** (1.0 / self.exponent)


def frontier(compute: Sequence[float], loss: Sequence[float]):
  """(budgets, best losses): the minimum loss over the runs of each compute budget (runs
  of one budget share the same compute value)."""
  compute, loss = np.asarray(compute, np.float64), np.asarray(loss, np.float64)
  budgets = np.unique(compute)
  return budgets, np.array([loss[compute == c].min() for c in budgets])


def fit_power_law(compute: Sequence[float], loss: Sequence[float]) -> PowerLaw:
  """Least squares of log loss = log A - alpha log C (at least two points)."""
  log_c, log_l = np.log(np.asarray(compute, np.float64)), np.log(np.asarray(loss, np.float64))
  if log_c.size < 2:
    raise ValueError("A power-law fit needs at least two (compute, loss) points.")
  slope, intercept = np.polyfit(log_c, log_l, 1)
  return PowerLaw(float(np.exp(intercept)), float(-slope))


def compute_multiple(reference: PowerLaw, other: PowerLaw, loss) -> np.ndarray:
  """C_other(loss) / C_reference(loss): how much more compute `other` needs for `loss`."""
  return other.compute(loss) / reference.compute(loss)
