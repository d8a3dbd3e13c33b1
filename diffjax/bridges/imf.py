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

Registered as the bridge method "imf" between two marginals (`diffjax.bridges.methods`).
"""
import dataclasses
import functools
import inspect
from typing import Callable, List

import jax

from diffjax.bridges import bridge_matching
from diffjax.bridges.host_coupling import HOST_COUPLINGS, coupled_batches
from diffjax.bridges.ipf import check_positive_int, only
from diffjax.bridges.methods import (BridgeMethod, BridgePhases, BridgeSetup, PhaseCost,
                                     register_method)
from diffjax.couplings import COUPLINGS
from diffjax.errors import ConfigError
from diffjax.train.task import Phase
from diffjax.train.validation import Key


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



# ----------------------------------------------------------------------------------------
# The registered method: IMF between two marginals (SB-CFM reuses it: `sbcfm`).


def two_marginal_imf(setup: BridgeSetup, coupling: str, num_iterations: int
                     ) -> BridgePhases:
  """IMF's phases between the problem's two marginals from the initial coupling `coupling`
  (a `diffjax.couplings.COUPLINGS` name; an entropic one gets epsilon = 2 sigma^2, the
  static Schrödinger problem of the Brownian reference). With bridge.host_coupling the
  pairs of imf_0 are coupled on the host (`diffjax.bridges.host_coupling`) and fed as the
  task's data."""
  config, problem = setup.config, setup.problem
  cfg, batch_size = config.bridge, config.train.batch_size
  initial_steps = cfg.initial_steps or cfg.steps_per_phase
  data = None
  if cfg.host_coupling:
    # Two train calls' worth of batches ahead: the next call's pairs are solved while the
    # device runs the current one.
    data = lambda start: coupled_batches(problem.source, problem.target, batch_size, start,
                                         seed=config.seed, coupling=coupling,
                                         prefetch=2 * config.train.steps_per_call,
                                         active=lambda step: step < initial_steps)

    def initial_pairs(key, shard, batch):
      del key
      return shard(batch["x0"]), shard(batch["x1"])
  else:
    couple = COUPLINGS.get(coupling)
    if "epsilon" in inspect.signature(couple).parameters:
      couple = functools.partial(couple, epsilon=2 * problem.sigma ** 2)

    def initial_pairs(key, shard, batch):
      del batch
      k0, k1, kc = jax.random.split(key, 3)
      return couple(kc, shard(problem.source(k0, batch_size)),
                    shard(problem.target(k1, batch_size)))

  def make_pairs(drift, key, direction):
    k_start, k_path = jax.random.split(key)
    start = problem.starts(k_start, cfg.cache_size, direction)
    return bridge_matching.simulate_pairs(drift, start, problem.ts, k_path, problem.sigma,
                                          direction)

  schedule = imf_schedule(setup.apply_fn, make_pairs, initial_pairs, sigma=problem.sigma,
                          steps_per_phase=cfg.steps_per_phase, batch_size=batch_size,
                          t_margin=cfg.t_margin)
  return BridgePhases(schedule.phases(num_iterations, initial_steps), data)


def imf_cost(config, num_iterations) -> List[PhaseCost]:
  """imf_0 evaluates both networks per example; each later phase simulates cache_size
  pairs (one evaluation per path step) and evaluates one network per example."""
  c, batch = config.bridge, config.train.batch_size
  initial = PhaseCost(c.initial_steps or c.steps_per_phase, 0, 2 * batch)
  later = PhaseCost(c.steps_per_phase, c.cache_size * c.num_steps, batch)
  return [initial] + [later] * (2 * num_iterations)


def check_host_coupling(config, coupling, key="bridge.initial_coupling"):
  """Refuses a host-fed first phase (bridge.host_coupling) with a device-only coupling."""
  if config.bridge.host_coupling and coupling not in HOST_COUPLINGS:
    raise ConfigError(f"{key}={coupling!r} cannot be solved on the host "
                      f"(bridge.host_coupling=True); choose one of "
                      f"{', '.join(HOST_COUPLINGS)}, or set bridge.host_coupling=False.")


# The keys of IMF's first phase, shared with SB-CFM.
FIRST_PHASE_KEYS = (
    Key("bridge.initial_steps", "int", 0,
        meaning="steps of imf_0; 0: bridge.steps_per_phase"),
    Key("bridge.host_coupling", "bool"),
    Key("bridge.t_margin", "float", 0.0, 0.5, open_low=True, open_high=True),
)

IMF = register_method(BridgeMethod(
    name="imf", label="IMF (DSBM)", problem="two_marginal",
    keys=FIRST_PHASE_KEYS + (
        Key("bridge.num_iterations", "int", 1, meaning="IMF iterations"),
        Key("bridge.cache_size", "int", 1, meaning="pairs simulated per phase"),
        Key("bridge.initial_coupling", "name", names=COUPLINGS.names)),
    phases=lambda setup: two_marginal_imf(setup, setup.config.bridge.initial_coupling,
                                          setup.config.bridge.num_iterations),
    cost=lambda config, num_segments=1: imf_cost(config, config.bridge.num_iterations),
    check=lambda config: check_host_coupling(config, config.bridge.initial_coupling)))
