"""Bridge methods as registry entries that declare what they are.

Each entry of `BRIDGE_METHODS` is a `BridgeMethod`: the problem it bridges (two marginals,
or snapshots), the config keys it reads, its config check, its phases (the engine's
`Phase`s, built from a `BridgeSetup`), its evaluation drifts and its cost in network
evaluations. Callers read the declaration, never a list of method names. A method is one
module that builds its phases and registers its entry; the registered ones:

  ipf            iterative proportional fitting, DSB (`diffjax.bridges.ipf`)
  imf            iterative Markovian fitting, DSBM (`diffjax.bridges.imf`)
  sbcfm          SB-CFM: IMF's first projection of the entropic-OT coupling
                 (`diffjax.bridges.sbcfm`)
  sbirr          multi-marginal SB with iterative reference refinement
                 (`diffjax.bridges.sbirr`)
  multimarginal  vanilla multi-marginal SB: SBIRR's outer loop under the fixed reference
                 (`diffjax.bridges.sbirr`)

Parameters of every method here are a dict {"forward": ..., "backward": ...} of two
networks of the same model (`two_networks`).
"""
import dataclasses
import functools
import math
from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import jax

from diffjax.registry import Registry
from diffjax.train.task import Phase
from diffjax.train.validation import Key

BRIDGE_METHODS = Registry("bridge method")
# What a method bridges; each data kind (`diffjax.bridges.problems.BRIDGE_DATA`) gives one.
PROBLEM_KINDS = ("two_marginal", "snapshots")


@dataclasses.dataclass(frozen=True)
class BridgeSetup:
  """What a method's phases are built from.

  Attributes:
    config: the run's config (sections bridge, reference, train; seed).
    apply_fn: apply_fn(network_params, x (B, D), t (B,) or ()) -> drift (B, D).
    problem: the `diffjax.bridges.problems` problem (`TwoMarginalProblem` or
      `SnapshotProblem`, as the method's `problem` says).
  """
  config: Any
  apply_fn: Callable
  problem: Any


class BridgePhases(NamedTuple):
  """A method's phases and, when it reads host-fed batches, the task's `data`
  (data(start_step) -> iterator of batches, `diffjax.train.Task`)."""
  phases: List[Phase]
  data: Optional[Callable[[int], Iterator[Any]]] = None


class PhaseCost(NamedTuple):
  """The network evaluations of one phase, per example (backward passes not counted):
  `simulation` when the phase starts (its caches or pairs; none for a reference drift),
  `regression` per training step (examples times networks evaluated)."""
  num_steps: int
  simulation: int
  regression: int


def network_drifts(apply_fn: Callable, params) -> Tuple[Callable, Callable]:
  """(forward drift, backward drift) of a {"forward", "backward"} parameter dict."""
  return (lambda x, t: apply_fn(params["forward"], x, t),
          lambda x, t: apply_fn(params["backward"], x, t))


def two_networks(model) -> Callable:
  """init_params(key) -> {"forward": ..., "backward": ...}: two networks of `model`."""
  def init_params(key):
    return {"forward": model.init(jax.random.fold_in(key, 0)),
            "backward": model.init(jax.random.fold_in(key, 1))}
  return init_params


def no_check(config):
  del config


def no_diagnostics(setup: BridgeSetup) -> Callable:
  del setup
  return lambda params, key: {}


@dataclasses.dataclass(frozen=True)
class BridgeMethod:
  """A registered bridge method.

  Attributes:
    name: the registry name (config.bridge.method).
    label: a human name for titles.
    problem: what it bridges, one of PROBLEM_KINDS.
    keys: the config keys it reads (`diffjax.train.validation.Key`), beyond the family's.
    phases: phases(setup: BridgeSetup) -> `BridgePhases`.
    cost: cost(config, num_segments) -> [PhaseCost] with one entry per phase, in order
      (num_segments: bridged segments, the training snapshots - 1; 1 for two marginals).
    iteration: iteration(config) -> training steps of one iteration of the method (two
      half-iterations; SBIRR: one outer iteration), the period of its evaluations.
    check: check(config) raises ConfigError for values its keys cannot express (rules
      tying keys together); it runs before anything is built.
    drifts: drifts(apply_fn, params) -> (forward, backward) drifts the evaluation
      simulates.
    diagnostics: diagnostics(setup) -> fn(params, key) -> {name: float}, evaluation values
      of the method's own (e.g. SBIRR's refitted reference).
  """
  name: str
  label: str
  problem: str
  keys: Tuple[Key, ...]
  phases: Callable[[BridgeSetup], BridgePhases]
  cost: Callable[[Any, int], Sequence[PhaseCost]]
  iteration: Callable[[Any], int] = lambda config: 2 * config.bridge.steps_per_phase
  check: Callable[[Any], None] = no_check
  drifts: Callable = network_drifts
  diagnostics: Callable[[BridgeSetup], Callable] = no_diagnostics

  def __post_init__(self):
    if self.problem not in PROBLEM_KINDS:
      raise ValueError(f"BridgeMethod {self.name!r}: problem={self.problem!r} must be one "
                       f"of {PROBLEM_KINDS}.")


def register_method(method: BridgeMethod) -> BridgeMethod:
  BRIDGE_METHODS.register(method.name, method)
  return method


def methods_for(problem: str) -> List[str]:
  """The names of the registered methods that bridge `problem`."""
  return [name for name in BRIDGE_METHODS.names()
          if BRIDGE_METHODS.get(name).problem == problem]


def accumulate_cost(costs: Sequence[PhaseCost], step: int) -> Tuple[int, int]:
  """(simulation, regression) network evaluations used by `step` over phases laid end
  to end: the simulations of the phases begun by then and the regression steps done."""
  simulation = regression = start = 0
  for cost in costs:
    if step <= start:
      break
    simulation += cost.simulation
    regression += min(step - start, cost.num_steps) * cost.regression
    start += cost.num_steps
  return simulation, regression


def call_length(config) -> int:
  """Training steps per compiled call of a run of `config`: the greatest common divisor
  of its phases' lengths and bridge.steps_per_phase, so that every call lies inside one
  phase and calls of one kind of phase share one compiled length."""
  method = BRIDGE_METHODS.get(config.bridge.method)
  lengths = {cost.num_steps for cost in method.cost(config, 1)}
  return functools.reduce(math.gcd, lengths, config.bridge.steps_per_phase)


def network_evaluations(config, step: int, num_segments: int = 1) -> Tuple[int, int]:
  """(simulation, regression) per-example network evaluations used by `step` of a run of
  `config` (its method's declared cost; num_segments as in `BridgeMethod.cost`)."""
  method = BRIDGE_METHODS.get(config.bridge.method)
  return accumulate_cost(method.cost(config, num_segments), step)
