"""The task interface between an experiment and the training engine.

The engine knows nothing about paths, objectives or data; an experiment builds a `Task`:

  params = task.init_params(key)
  loss, aux = task.loss(params, key, shard, step)          # jit-traced; draws its own batch
  loss, aux = task.loss(params, key, shard, step, batch)   # ... or, with `data`, is given one
  metrics, figures = task.evaluate(params, key)   # host side; figures: {name: mpl Figure}
  arrays, figures = task.sample(params, key)      # host side; arrays saved to samples.npz

`step` is the global training step (an int32 scalar inside the compiled call).

`data(start_step)`, optional, returns an iterator of this host's batches (pytrees of NumPy
arrays with leading axis batch_size / process_count) for steps start_step, start_step + 1,
...; it must be deterministic given the step so that a resumed run sees the same data.

`shard(x)` constrains a batch-first array to be split over the data-parallel devices; a
task applies it to the batch it draws so that the step runs data-parallel.

Phases. A method that alternates (IPF's forward and backward fits, iterative Markovian
fitting, an outer refinement of a reference process) gives `phases`: a sequence of `Phase`s
run one after another, each for its own number of steps, with its own loss, the parameters
it trains, and an optional `prepare` run once when the phase starts (or when a run resumes
inside it), e.g. to simulate a trajectory cache with the frozen network. The engine
schedules, checkpoints and resumes phases exactly like steps; a task without phases trains
`loss` for config.train.num_steps steps, as before.

With phases, `loss` is None and the phases define the run: it ends after the sum of their
num_steps, and the learning-rate schedule spans that sum (unless optim.decay_steps is set).
config.train.num_steps only stops a run earlier (a larger value stops at the phases' end);
rerunning with a larger value resumes the same run bit for bit. Parameters a phase does not
train keep their values and their optimizer state (Adam's moments) bit for bit, get no
weight decay and do not count in gradient clipping (`diffjax.train.phases`).

Players. A method with several networks trained against or alongside each other
(distribution-matching distillation: a generator, a "fake" score network fitted to the
generator's samples, a discriminator) gives `players`: a sequence of `Player`s, each with
its own loss, its own optimizer and the parameters it trains. With players, `loss` is None.
One training step updates the players one after another in the order given, each seeing
the parameters that the players before it have just updated, player i drawing its
randomness from fold_in(key, i). It is still one step: one compiled train call, one
checkpoint, whose optimizer state is a dict {player name: that player's optimizer state
over the parameters it trains}, and a resumed run continues bit for bit. A player's loss is

  loss, aux = player.loss(params, key, shard, step, batch)   # batch None without `data`

and its optimizer an optax GradientTransformation, the name of a config section
("optim_fake": the keys of config.optim it changes; the others, optim.ema_decay included,
are config.optim's, and its schedule spans the run), or None (config.optim). The EMA
averages every parameter once per step, after the last player. A task without players is
one player over every parameter, its optimizer state laid out as it always was (no dict).
`diffjax.train.step` is the step itself.

Players and phases combine: each phase names the players it updates
(`Phase("degrade", 500, players=("teacher_copy",))`, updated in the task's order) and has
no loss or trainable of its own; the players' losses then get the phase's context as a
sixth argument, loss(params, key, shard, step, batch, context), and a player that a phase
does not update keeps its parameters and its optimizer state bit for bit. Phases updating
the same players share one compiled train call.
"""
import dataclasses
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class Phase:
  """A stretch of training steps with its own loss (or its own players).

  Attributes:
    name: logged when the phase starts (e.g. "ipf_3_backward"); TensorBoard's scalar
      train/phase gives the phase's index beside the training losses.
    num_steps: training steps of this phase (> 0).
    loss: loss(params, key, shard, step, batch, context) -> (loss, aux); batch is None for
      tasks without `data`, context is what `prepare` returned (None without `prepare`),
      passed as an argument: phases sharing one loss and one trainable share one compiled
      train call. None in a task with players.
    trainable: optional trainable(params) -> pytree of Python bools (same structure as
      params, or a prefix of it, e.g. {"forward": True, "backward": False}) decided from
      the structure alone (it is also called on jax.ShapeDtypeStructs); parameters marked
      False receive no update in this phase. None: all.
    prepare: optional prepare(params, key) -> context (a pytree of arrays), jit-compiled
      and run when the phase starts and when a run resumes inside it, with a key derived
      from config.seed and the phase's index. It must read only parameters this phase
      does not train, so that a resumed run prepares the same context as an uninterrupted
      one: the parameters it trains are placeholders inside prepare, and reading one
      raises ConfigError (before the run starts).
    players: in a task with players, the names of the players this phase updates (see
      the module docstring); None otherwise.
  """
  name: str
  num_steps: int
  loss: Optional[Callable[..., Any]] = None
  trainable: Optional[Callable[[Any], Any]] = None
  prepare: Optional[Callable[[Any, Any], Any]] = None
  players: Optional[Sequence[str]] = None


@dataclasses.dataclass(frozen=True)
class Player:
  """A network (or any group of parameters) with its own loss and optimizer, updated in
  its turn inside each training step (the module docstring; `diffjax.train.step`).

  Attributes:
    name: names its optimizer state in the checkpoint and its logged scalars
      (train/<name>/loss, train/<name>/grad_norm).
    loss: loss(params, key, shard, step, batch) -> (loss, aux), given every parameter (the
      earlier players' as updated in this step) and differentiated only in the parameters
      this player trains.
    optimizer: an optax GradientTransformation, the name of a config section of optimizer
      keys (e.g. "optim_fake", over config.optim), or None for config.optim. Inside
      `diffjax.train.step` it is always a GradientTransformation.
    trainable: trainable(params) -> pytree of Python bools (a prefix of the parameters'
      structure, e.g. {"generator": True, "fake": False}), decided from the structure
      alone, as `Phase.trainable`; None: every parameter.
  """
  name: str
  loss: Callable[..., Any]
  optimizer: Any = None
  trainable: Optional[Callable[[Any], Any]] = None


@dataclasses.dataclass(frozen=True)
class Task:
  """What an experiment gives the engine (see the module docstring): `loss`, or `phases`,
  `players` or both with `loss` None."""
  init_params: Callable[..., Any]
  loss: Optional[Callable[..., Any]]
  evaluate: Callable[..., Any]
  sample: Callable[..., Any]
  batch_size: int
  data: Optional[Callable[[int], Iterator[Any]]] = None
  phases: Sequence[Phase] = ()
  players: Sequence[Player] = ()
  # JSON facts a loader needs besides the config (e.g. the data's shape), written to the
  # workdir's run.json with the run's length (`diffjax.runs.load`).
  record: Optional[Mapping[str, Any]] = None
