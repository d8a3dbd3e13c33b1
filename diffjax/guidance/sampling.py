"""Sampling with guidance: a sampler of the registry, its stepper wrapped by the method.

  result = guided_sample(name, guidance, path, x0, key, num_steps=..., **options)

as `diffjax.solvers.sample`, with `guidance` a `Guidance` (from `build_guidance` or built
by hand): its fields are what the sampler integrates (guided fields for CFG, classifier
and reconstruction guidance; the conditional or unconditional fields for methods that
change the step) and wrap(stepper, name) turns the sampler's stepper into the guided one
(identity for methods that only change the fields).
"""
from typing import Callable, NamedTuple

from diffjax.core import Fields, Stepper
from diffjax.fields import complete
from diffjax.solvers import SAMPLERS, integrate, time_grid
from diffjax.solvers.integrate import Solution


def _identity(stepper, sampler):
  del sampler
  return stepper


class Guidance(NamedTuple):
  """fields: what the sampler integrates; wrap(stepper, sampler_name) -> Stepper."""
  fields: Fields
  wrap: Callable[[Stepper, str], Stepper] = _identity


def guided_sample(name, guidance: Guidance, path, x0, key=None, *, num_steps,
                  return_trajectory=False, grid=None, record=None, **options) -> Solution:
  """Runs sampler `name` with `guidance` (module docstring); options as for `sample`."""
  entry = SAMPLERS.get(name)
  grid_options = options.pop("grid_options", {})
  stepper = guidance.wrap(entry.build(path, **options), name)
  ts = time_grid(entry.default_grid if grid is None else grid, num_steps, path,
                 **grid_options)
  return integrate(stepper, complete(guidance.fields, path), x0, ts, key,
                   return_trajectory=return_trajectory, record=record)
