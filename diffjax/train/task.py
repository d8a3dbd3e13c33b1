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
"""
import dataclasses
from typing import Any, Callable, Iterator, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class Phase:
  """A stretch of training steps with its own loss.

  Attributes:
    name: shown in logs and TensorBoard (e.g. "ipf_3_backward").
    num_steps: training steps of this phase (> 0).
    loss: loss(params, key, shard, step, batch, context) -> (loss, aux); batch is None for
      tasks without `data`, context is what `prepare` returned (None without `prepare`).
      Phases that share one loss function share one compiled train call.
    trainable: optional trainable(params) -> pytree of bools (same structure as params, or
      a prefix of it); parameters marked False receive no update in this phase. None: all.
    prepare: optional prepare(params, key) -> context (a pytree of arrays), jit-compiled
      and run when the phase starts and when a run resumes inside it. It must read only
      parameters this phase does not train, so that a resumed run prepares the same
      context as an uninterrupted one.
  """
  name: str
  num_steps: int
  loss: Callable[..., Any]
  trainable: Optional[Callable[[Any], Any]] = None
  prepare: Optional[Callable[[Any, Any], Any]] = None


@dataclasses.dataclass(frozen=True)
class Task:
  init_params: Callable[..., Any]
  loss: Optional[Callable[..., Any]]
  evaluate: Callable[..., Any]
  sample: Callable[..., Any]
  batch_size: int
  data: Optional[Callable[[int], Iterator[Any]]] = None
  phases: Sequence[Phase] = ()
