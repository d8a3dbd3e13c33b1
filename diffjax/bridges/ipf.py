"""Iterative proportional fitting (the Diffusion Schrödinger Bridge) as engine phases.

"Diffusion Schrödinger Bridge with Applications to Score-Based Generative Modeling"
(De Bortoli, Thornton, Heng & Doucet, NeurIPS 2021, Alg. 1). Parameters are a dict with
"forward" and "backward" network parameters (and possibly more entries, e.g. a reference's
"reference", that IPF never trains). Iteration n = 1, 2, ... is two phases:

  ipf_n_backward  prepare: simulate paths forward from rho0 with the forward network (with
                  the reference's drift when n = 1: plain score-based modelling of the
                  reference's reversal) into a `TrajectoryCache`; train the backward
                  network by mean matching on it.
  ipf_n_forward   prepare: simulate backward from rho1 with the backward network; train the
                  forward network.

Each network is warm-started from its previous iteration (the parameters simply persist).
A half-iteration may be split into `caches_per_phase` phases with fresh caches (the paper's
cache refresh). Every phase of one kind shares one loss, one trainable mask and one
prepare function, so the engine compiles each once. The trajectory cache is the phase's
context: it lives on device, and the regression steps of a phase draw from it with no host
round trip.

Registered as the bridge method "ipf" between two marginals (`diffjax.bridges.methods`):
the Brownian reference's first cache, caches of `bridge.cache_size` paths from rho0 or
rho1 on the problem's grid.
"""
import dataclasses
from typing import Callable, List

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.bridges import mean_matching
from diffjax.bridges.methods import (BridgeMethod, BridgePhases, BridgeSetup, PhaseCost,
                                     register_method)
from diffjax.bridges.simulate import DIRECTIONS
from diffjax.errors import ConfigError
from diffjax.train.task import Phase
from diffjax.train.validation import Key

def only(name):
  """trainable(params) marking only params[name] True (a prefix of the params' tree)."""
  def trainable(params):
    return {key: key == name for key in params}
  trainable.__name__ = f"only_{name}"
  return trainable


def check_positive_int(value, name):
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
  return value


@dataclasses.dataclass(frozen=True)
class IPFSchedule:
  """The functions of IPF's phases, built once (see `ipf_schedule`)."""
  losses: dict
  prepares: dict
  trainables: dict
  steps_per_phase: int
  caches_per_phase: int

  def phases(self, iterations, prefix="ipf", first_prepare=None) -> List[Phase]:
    """The phases of IPF iterations `iterations` (e.g. range(1, 11)): for each, backward
    then forward, each split into caches_per_phase phases. first_prepare, if given,
    replaces the prepare of iteration 1's backward phases (the reference's cache)."""
    out = []
    steps = self.steps_per_phase // self.caches_per_phase
    for n in iterations:
      for direction in ("backward", "forward"):
        prepare = self.prepares["reference" if (n == 1 and direction == "backward")
                                else direction]
        if n == 1 and direction == "backward" and first_prepare is not None:
          prepare = first_prepare
        for part in range(self.caches_per_phase):
          suffix = f"_{part + 1}" if self.caches_per_phase > 1 else ""
          out.append(Phase(f"{prefix}_{n}_{direction}{suffix}", steps,
                           self.losses[direction], self.trainables[direction], prepare))
    return out


def dsb_time_grid(num_steps, gamma_min=1.0, gamma_max=1.0):
  """DSB's step sizes as a grid on [0, 1]: gamma_k linear from gamma_min up to gamma_max
  over the first half of the steps and back down over the second (the paper's symmetric
  "linspace" schedule, finer steps at both ends when gamma_min < gamma_max), normalised to
  sum to 1 (the reference's sigma sets the total noise, sigma^2 = 2 sum gamma). Returns
  (num_steps + 1,) increasing times from 0 to 1; equal gammas give the uniform grid."""
  check_positive_int(num_steps, "num_steps")
  if not 0 < gamma_min <= gamma_max:
    raise ConfigError(f"Need 0 < gamma_min <= gamma_max; got gamma_min={gamma_min}, "
                      f"gamma_max={gamma_max}.")
  half = np.linspace(gamma_min, gamma_max, (num_steps + 1) // 2)
  gammas = np.concatenate([half, half[::-1][num_steps % 2:]])
  times = np.concatenate([[0.0], np.cumsum(gammas) / gammas.sum()])
  times[-1] = 1.0
  return jnp.asarray(times, jnp.float32)


def ipf_schedule(apply_fn: Callable, make_cache: Callable, reference_drift: Callable, *,
                 steps_per_phase: int, batch_size: int, caches_per_phase: int = 1
                 ) -> IPFSchedule:
  """IPF's phase functions.

  Args:
    apply_fn: apply_fn(network_params, x (B, D), t (B,) or ()) -> drift (B, D).
    make_cache: make_cache(drift, key, direction) -> `mean_matching.TrajectoryCache`:
      paths of `drift` from rho0 ("forward") or rho1 ("backward"), e.g. a partial of
      `mean_matching.simulate_cache` or `multimarginal.segment_caches`.
    reference_drift: reference_drift(params) -> drift(x, t): the reference's drift (it may
      read parameters IPF does not train, e.g. params["reference"]).
    steps_per_phase: regression steps per half-iteration.
    batch_size: (path, time) pairs per regression step.
    caches_per_phase: fresh caches per half-iteration (steps_per_phase must divide).
  """
  check_positive_int(steps_per_phase, "steps_per_phase")
  check_positive_int(caches_per_phase, "caches_per_phase")
  if steps_per_phase % caches_per_phase:
    raise ConfigError(f"steps_per_phase={steps_per_phase} must be divisible by "
                      f"caches_per_phase={caches_per_phase}.")

  def make_loss(direction):
    def loss(params, key, shard, step, batch, context):
      del shard, step, batch
      drift = lambda x, t: apply_fn(params[direction], x, t)
      return mean_matching.mean_matching_loss(drift, context, key, batch_size)
    loss.__name__ = f"mean_matching_{direction}"
    return loss

  def prepare_reference(params, key):
    return make_cache(reference_drift(params), key, "forward")

  def prepare_backward(params, key):     # Fits the backward network on forward paths.
    return make_cache(lambda x, t: apply_fn(params["forward"], x, t), key, "forward")

  def prepare_forward(params, key):      # Fits the forward network on backward paths.
    return make_cache(lambda x, t: apply_fn(params["backward"], x, t), key, "backward")

  return IPFSchedule(
      losses={d: make_loss(d) for d in DIRECTIONS},
      prepares={"reference": prepare_reference, "backward": prepare_backward,
                "forward": prepare_forward},
      trainables={d: only(d) for d in DIRECTIONS},
      steps_per_phase=steps_per_phase, caches_per_phase=caches_per_phase)


def ipf_phases(apply_fn, make_cache, reference_drift, *, num_iterations, steps_per_phase,
               batch_size, caches_per_phase=1) -> List[Phase]:
  """The phases of `num_iterations` IPF iterations (module docstring)."""
  check_positive_int(num_iterations, "num_iterations")
  schedule = ipf_schedule(apply_fn, make_cache, reference_drift,
                          steps_per_phase=steps_per_phase, batch_size=batch_size,
                          caches_per_phase=caches_per_phase)
  return schedule.phases(range(1, num_iterations + 1))


def ipf_cost(num_iterations, steps_per_phase, caches_per_phase, batch_size,
             cache_evaluations, first_evaluations=0) -> List[PhaseCost]:
  """The `PhaseCost`s of `IPFSchedule.phases(range(1, num_iterations + 1))`: every cache
  costs cache_evaluations (mean matching evaluates the drift twice per path step), except
  iteration 1's backward caches, which simulate the reference's drift and cost
  first_evaluations (0, or e.g. SBIRR's refit simulation)."""
  steps = steps_per_phase // caches_per_phase
  return [PhaseCost(steps, first_evaluations if (n == 1 and direction == "backward")
                    else cache_evaluations, batch_size)
          for n in range(1, num_iterations + 1) for direction in ("backward", "forward")
          for _ in range(caches_per_phase)]


# ----------------------------------------------------------------------------------------
# The registered method: IPF between two marginals.


def check_caches(config):
  """Refuses a half-iteration that does not split evenly into its caches."""
  c = config.bridge
  if c.steps_per_phase % c.caches_per_phase:
    raise ConfigError(f"bridge.steps_per_phase={c.steps_per_phase} must be divisible by "
                      f"bridge.caches_per_phase={c.caches_per_phase} (each cache serves "
                      "an equal share of the half-iteration's steps).")


def _phases(setup: BridgeSetup) -> BridgePhases:
  cfg, problem = setup.config.bridge, setup.problem

  def make_cache(drift, key, direction):
    k_start, k_path = jax.random.split(key)
    start = problem.starts(k_start, cfg.cache_size, direction)
    return mean_matching.simulate_cache(drift, start, problem.ts, k_path, problem.sigma,
                                        direction)

  return BridgePhases(ipf_phases(setup.apply_fn, make_cache,
                                 lambda params: problem.reference.drift,
                                 num_iterations=cfg.num_iterations,
                                 steps_per_phase=cfg.steps_per_phase,
                                 batch_size=setup.config.train.batch_size,
                                 caches_per_phase=cfg.caches_per_phase))


def _cost(config, num_segments=1):
  c = config.bridge
  return ipf_cost(c.num_iterations, c.steps_per_phase, c.caches_per_phase,
                  config.train.batch_size, 2 * c.cache_size * c.num_steps * num_segments)


IPF_KEYS = (
    Key("bridge.num_iterations", "int", 1, meaning="IPF iterations"),
    Key("bridge.cache_size", "int", 1, meaning="paths per trajectory cache"),
    Key("bridge.caches_per_phase", "int", 1, meaning="fresh caches per half-iteration"),
)

IPF = register_method(BridgeMethod(
    name="ipf", label="IPF (DSB)", problem="two_marginal", keys=IPF_KEYS, phases=_phases,
    cost=_cost, check=check_caches))
