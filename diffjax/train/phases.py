"""Phases of a training run: their layout on the step axis, trainable masks, `prepare`.

A task's phases run one after another on the global step axis: phase i covers steps
[starts[i], starts[i] + num_steps). The train state holds no phase: the step alone says
where a run is, so checkpoints and resumption need nothing new.

Freezing. `Phase.trainable` is called on the parameters (tracers, or ShapeDtypeStructs when
the engine validates a task) and must decide from their structure alone, returning Python
bools (a prefix tree of the parameters): the mask is fixed when the train call is compiled,
so a frozen parameter's gradient is a constant zero and XLA drops its backward pass. In a
phase, a frozen parameter
  - keeps its value bit for bit (the optimizer's update is discarded, weight decay too);
  - keeps its optimizer state (Adam's moments) as it was, so that when a later phase trains
    it again it continues as if its own optimizer had paused; decaying the moments
    instead would leave m / sqrt(v) ~ (1 - b1) / sqrt(1 - b2), i.e. about 3x the usual
    step, on its first update after a long freeze;
  - does not count in gradient clipping or in the logged gradient norm.
The optimizer's step count (Adam's bias correction, the learning-rate schedule) and the
EMA run on the global step for every parameter (the EMA of a frozen parameter converges
to its frozen value).

`prepare(params, key)` may read only frozen parameters: a run resumed inside a phase
prepares its context again from the parameters it restored, which equal those at the
phase's start only where the phase does not train. The engine enforces this: inside
`prepare`, each trained parameter is a placeholder that raises ConfigError when read.
"""
import bisect
import dataclasses
from typing import Any, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffjax.errors import ConfigError
from diffjax.train.task import Phase


@dataclasses.dataclass(frozen=True)
class PhasePlan:
  """Phases laid end to end from step 0; starts[i] is the first step of phase i."""
  phases: Tuple[Phase, ...]
  starts: Tuple[int, ...]

  @property
  def total_steps(self) -> int:
    return self.end(len(self.phases) - 1)

  def index(self, step: int) -> int:
    """The phase that trains global step `step` (the last phase from its end on)."""
    return min(bisect.bisect_right(self.starts, step) - 1, len(self.phases) - 1)

  def end(self, index: int) -> int:
    return self.starts[index] + int(self.phases[index].num_steps)


def _check_phase_players(phase: Phase, who: str, player_names):
  """ConfigError unless `phase` fits its task: a loss without players, or players (names
  of the task's) without a loss or trainable of its own."""
  if player_names is None:
    if phase.players is not None:
      raise ConfigError(f"{who}: players={phase.players!r}, but the task has no players; "
                        "give the phase a loss instead.")
    if not callable(phase.loss):
      raise ConfigError(f"{who}: loss={phase.loss!r} must be a function.")
    return
  for field in ("loss", "trainable"):
    if getattr(phase, field) is not None:
      raise ConfigError(f"{who}: {field}={getattr(phase, field)!r} must be None in a task "
                        "with players (each player has its own loss and trainable); name "
                        "the players the phase updates in Phase.players.")
  names = phase.players
  if (isinstance(names, str) or not isinstance(names, (tuple, list)) or not names
      or any(n not in player_names for n in names) or len(set(names)) != len(names)):
    raise ConfigError(f"{who}: players={names!r} must name one or more of the task's "
                      f"players, each once: {', '.join(player_names)}.")


def plan_phases(phases: Sequence[Phase], player_names=None) -> PhasePlan:
  """Checks a task's phases (ConfigError naming the bad one) and lays them out.
  `player_names`: the task's players, or None for a task without players."""
  phases = tuple(phases)
  starts, start = [], 0
  for i, phase in enumerate(phases):
    if not isinstance(phase, Phase):
      raise ConfigError(f"task.phases[{i}] is a {type(phase).__name__}; phases must be "
                        "diffjax.train.Phase objects.")
    who = f"Phase {i} ({phase.name!r})"
    if not isinstance(phase.name, str) or not phase.name:
      raise ConfigError(f"task.phases[{i}].name={phase.name!r} must be a non-empty string.")
    steps = phase.num_steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
      raise ConfigError(f"{who}: num_steps={phase.num_steps!r} must be a positive integer.")
    for field in ("trainable", "prepare"):
      value = getattr(phase, field)
      if value is not None and not callable(value):
        raise ConfigError(f"{who}: {field}={value!r} must be a function or None.")
    _check_phase_players(phase, who, player_names)
    starts.append(start)
    start += int(phase.num_steps)
  return PhasePlan(phases, tuple(starts))


def parameter_mask(trainable, params, who: str = "trainable") -> Any:
  """trainable(params) (a prefix tree of Python bools; None: all) broadcast to the
  parameters' structure: a pytree of Python bools. `who` names the owner in errors."""
  if trainable is None:
    return jax.tree.map(lambda _: True, params)
  given = trainable(params)
  for path, leaf in jax.tree_util.tree_flatten_with_path(given)[0]:
    if not isinstance(leaf, (bool, np.bool_)):
      raise ConfigError(
          f"{who}: trainable(params) gave {type(leaf).__name__} at "
          f"{jax.tree_util.keystr(path) or 'the root'}; it must give Python bools, decided "
          "from the parameters' structure (the mask is fixed when the step is compiled).")
  try:
    mask = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), given, params)
  except (ValueError, TypeError) as error:
    raise ConfigError(
        f"{who}: trainable(params) must give the parameters' structure or a prefix of it "
        f"({jax.tree.structure(params)}); got {jax.tree.structure(given)}.") from error
  if not any(jax.tree.leaves(mask)):
    raise ConfigError(f"{who} trains no parameter: trainable(params) marks every parameter "
                      "False.")
  return mask


def trainable_mask(owner, params) -> Any:
  """The mask of a Phase or a Player (its `trainable`, named by its `name` in errors)."""
  return parameter_mask(owner.trainable, params, f"{type(owner).__name__} {owner.name!r}")


def select(mask, if_true, if_false):
  """Leaf-wise choice by a pytree of Python bools (no computation is emitted)."""
  return jax.tree.map(lambda m, a, b: a if m else b, mask, if_true, if_false)


def zero_frozen(mask, grads):
  return jax.tree.map(lambda m, g: g if m else jnp.zeros_like(g), mask, grads)


def optimizer_state_mask(optimizer, opt_state, mask):
  """The optimizer state's structure with Python bools: each parameter's entries (e.g.
  Adam's moments) get its mask, the remaining entries (step counts) True."""
  return optax.tree_utils.tree_map_params(optimizer, lambda _, m: m, opt_state, mask,
                                          transform_non_params=lambda _: True)


class _TrainedParameter:
  """Stands in, inside `prepare`, for a parameter that the phase trains."""

  def __init__(self, phase_name, path):
    self._message = (
        f"The prepare function of phase {phase_name!r} reads the parameter {path}, which "
        "this phase trains: a run resumed inside the phase could not prepare the same "
        "context. prepare may read only parameters that trainable marks False.")

  def _refuse(self, *args, **kwargs):
    raise ConfigError(self._message)

  def __getattr__(self, name):
    if name.startswith("__") and name.endswith("__"):
      raise AttributeError(name)  # Protocol probes (copy, pickle, numpy) see no attribute.
    self._refuse()

  def __repr__(self):
    return "<a parameter that this phase trains>"


for _name in ("jax_array", "array", "add", "radd", "sub", "rsub", "mul", "rmul", "truediv",
              "rtruediv", "matmul", "rmatmul", "pow", "rpow", "neg", "pos", "abs",
              "getitem", "iter", "len", "bool", "float", "int", "lt", "le", "gt", "ge"):
  setattr(_TrainedParameter, f"__{_name}__", _TrainedParameter._refuse)


def compile_prepare(phase: Phase, params_mask, out_shardings=None):
  """jit-compiled prepare(params, key) -> context in which trained parameters are
  placeholders (see the module docstring). `out_shardings` pins the context's layout (the
  engine's: replicated), so that the train call given it compiles once whichever
  parameters the prepare reads (none: its output would otherwise lie on one device)."""
  def guarded(params, key):
    visible = jax.tree_util.tree_map_with_path(
        lambda path, m, p: _TrainedParameter(phase.name, jax.tree_util.keystr(path))
        if m else p, params_mask, params)
    return phase.prepare(visible, key)
  return jax.jit(guarded, out_shardings=out_shardings)


def check_prepare(prepared, phase: Phase, abstract_params, key):
  """Traces a compiled prepare on abstract parameters (no computation), so that a prepare
  that reads a trained parameter fails before a run starts."""
  try:
    jax.eval_shape(prepared, abstract_params, key)
  except ConfigError:
    raise
  except Exception as error:  # Some JAX entry points reject the placeholder themselves.
    if hasattr(error, "add_note"):
      error.add_note(f"(In the prepare function of phase {phase.name!r} the parameters "
                     "that this phase trains are placeholders that cannot be read.)")
    raise
