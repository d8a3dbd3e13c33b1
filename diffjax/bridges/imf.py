"""Iterative Markovian fitting (Diffusion Schrödinger Bridge Matching) as engine phases.

"Diffusion Schrödinger Bridge Matching" (Shi, De Bortoli, Campbell & Doucet, NeurIPS 2023,
Alg. 1, DSBM-IMF with forward and backward networks). Parameters are a dict with "forward"
and "backward" network parameters.

  imf_0           the initial coupling's Markovian projection: each step draws pairs from
                  the initial coupling (independent, minibatch OT, minibatch entropic OT, or
                  pairs fed by the task's host `data` iterator) and trains both networks by
                  bridge matching. With the entropic coupling (epsilon = 2 sigma^2) and no
                  further iteration this is SB-CFM / SF2M's drift.
  imf_n_backward  (n >= 1) prepare: simulate the forward SDE from rho0, giving pairs
                  (x0, x1^) with x0's marginal exact (the reciprocal projection); train the
                  backward network by bridge matching on them.
  imf_n_forward   prepare: simulate the backward SDE from rho1, pairs (x0^, x1); train the
                  forward network.

The pair cache is the phase's context (on device); all phases of one kind share their
functions (loss, trainable mask, prepare: the same Python objects), so the engine compiles
each once.
"""
import dataclasses
from typing import Callable, List

import jax

from diffjax.bridges import bridge_matching
from diffjax.bridges.ipf import check_positive_int, only
from diffjax.train.task import Phase


def both(params):
  """trainable(params) marking the forward and backward networks."""
  return {key: key in ("forward", "backward") for key in params}


@dataclasses.dataclass(frozen=True)
class IMFSchedule:
  """The functions of IMF's phases, built once (see `imf_schedule`)."""
  initial_loss: Callable
  losses: dict
  prepares: dict
  trainables: dict
  steps_per_phase: int

  def phases(self, num_iterations, initial_steps=None, prefix="imf") -> List[Phase]:
    """imf_0 (initial_steps, default steps_per_phase) then iterations 1..num_iterations."""
    out = [Phase(f"{prefix}_0", initial_steps or self.steps_per_phase, self.initial_loss,
                 both)]
    for n in range(1, num_iterations + 1):
      for direction in ("backward", "forward"):
        out.append(Phase(f"{prefix}_{n}_{direction}", self.steps_per_phase,
                         self.losses[direction], self.trainables[direction],
                         self.prepares[direction]))
    return out


def imf_schedule(apply_fn: Callable, make_pairs: Callable, initial_pairs: Callable, *,
                 sigma: float, steps_per_phase: int, batch_size: int, t_margin=1e-3,
                 weighting="uniform") -> IMFSchedule:
  """IMF's phase functions.

  Args:
    apply_fn: apply_fn(network_params, x (B, D), t (B,)) -> drift (B, D).
    make_pairs: make_pairs(drift, key, direction) -> `bridge_matching.PairCache`, e.g. a
      partial of `bridge_matching.simulate_pairs` with samples of rho0 / rho1.
    initial_pairs: initial_pairs(key, shard, batch) -> (x0, x1), each (batch_size, D): a
      training step's pairs of the initial coupling (batch: the host-fed batch or None).
    sigma: the Brownian reference's sigma.
    steps_per_phase: regression steps per phase.
    batch_size: pairs per regression step.
    t_margin: times stay t_margin away from the end where a target is singular.
    weighting: of the bridge-matching loss, "uniform" or "bounded"
      (`bridge_matching.bridge_matching_loss`).
  """
  check_positive_int(steps_per_phase, "steps_per_phase")

  def initial_loss(params, key, shard, step, batch, context):
    del step, context
    k_pairs, k_fwd, k_bwd = jax.random.split(key, 3)
    x0, x1 = initial_pairs(k_pairs, shard, batch)
    total, aux = 0.0, {}
    for direction, k in (("forward", k_fwd), ("backward", k_bwd)):
      drift = lambda x, t, d=direction: apply_fn(params[d], x, t)
      value, _ = bridge_matching.bridge_matching_loss(drift, k, x0, x1, sigma, direction,
                                                      t_margin, weighting)
      total = total + value
      aux[f"bridge_matching_{direction}"] = value
    return total, aux

  def make_loss(direction):
    def loss(params, key, shard, step, batch, context):
      del shard, step, batch
      k_pairs, k_loss = jax.random.split(key)
      x0, x1 = bridge_matching.cache_pairs(context, k_pairs, batch_size)
      drift = lambda x, t: apply_fn(params[direction], x, t)
      return bridge_matching.bridge_matching_loss(drift, k_loss, x0, x1, sigma, direction,
                                                  t_margin, weighting)
    loss.__name__ = f"bridge_matching_{direction}"
    return loss

  def prepare_backward(params, key):   # Pairs of the forward SDE fit the backward drift.
    return make_pairs(lambda x, t: apply_fn(params["forward"], x, t), key, "forward")

  def prepare_forward(params, key):
    return make_pairs(lambda x, t: apply_fn(params["backward"], x, t), key, "backward")

  return IMFSchedule(initial_loss, {d: make_loss(d) for d in ("forward", "backward")},
                     {"backward": prepare_backward, "forward": prepare_forward},
                     {d: only(d) for d in ("forward", "backward")}, steps_per_phase)

