"""The objective interface.

An objective knows what the network regresses and how to turn the trained network into
a field for the solvers:

  loss, aux = objective.loss(apply_fn, params, key, x0, x1, cond=None)
  fields = objective.fields(apply_fn, params, cond=None)  # diffjax.core.Fields

x0: (B, ...) source samples (t = 0), x1: (B, ...) data (t = 1), already coupled.
"""
from typing import Any, Callable, NamedTuple

from diffjax.registry import Registry

OBJECTIVES = Registry("objective")


class Objective(NamedTuple):
  loss: Callable[..., Any]
  fields: Callable[..., Any]


def build_objective(name: str, path, **kwargs) -> Objective:
  """Builds the objective registered as `name` on `path` with its keyword options."""
  return OBJECTIVES.get(name)(path, **kwargs)
