"""The task interface between an experiment and the training engine.

The engine knows nothing about paths, objectives or data; an experiment builds a `Task`:

  params = task.init_params(key)
  loss, aux = task.loss(params, key, shard)       # jit-traced; draws its own global batch
  loss, aux = task.loss(params, key, shard, batch)  # ... or, with `data`, is given one
  metrics, figures = task.evaluate(params, key)   # host side; figures: {name: mpl Figure}
  arrays, figures = task.sample(params, key)      # host side; arrays saved to samples.npz

`data(start_step)`, optional, returns an iterator of this host's batches (pytrees of NumPy
arrays with leading axis batch_size / process_count) for steps start_step, start_step + 1,
...; it must be deterministic given the step so that a resumed run sees the same data.

`shard(x)` constrains a batch-first array to be split over the data-parallel devices; a
task applies it to the batch it draws so that the step runs data-parallel.
"""
import dataclasses
from typing import Any, Callable, Iterator, Optional


@dataclasses.dataclass(frozen=True)
class Task:
  init_params: Callable[..., Any]
  loss: Callable[..., Any]
  evaluate: Callable[..., Any]
  sample: Callable[..., Any]
  batch_size: int
  data: Optional[Callable[[int], Iterator[Any]]] = None
