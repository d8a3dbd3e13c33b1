"""The task interface between an experiment and the training engine.

The engine knows nothing about paths, objectives or data; an experiment builds a `Task`:

  params = task.init_params(key)
  loss, aux = task.loss(params, key, shard)       # jit-traced; draws its own global batch
  metrics, figures = task.evaluate(params, key)   # host side; figures: {name: mpl Figure}
  arrays, figures = task.sample(params, key)      # host side; arrays saved to samples.npz

`shard(x)` constrains a batch-first array to be split over the data-parallel devices; a
task applies it to the batch it draws so that the step runs data-parallel.
"""
import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Task:
  init_params: Callable[..., Any]
  loss: Callable[..., Any]
  evaluate: Callable[..., Any]
  sample: Callable[..., Any]
  batch_size: int
