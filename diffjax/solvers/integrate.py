"""The one driver of every sampler: `integrate(stepper, fields, x0, ts, key)`.

It runs a `Stepper` (`diffjax.core`) over a strictly monotone grid ts in [0, 1], increasing
(generation, t = 0 -> 1) or decreasing (likelihoods, a bridge's backward pass), with
`lax.scan`. It is the only loop over time steps in the sampling layer; a sampler is a
stepper, so DPS corrections, SVDD resampling, token samplers and bridges reuse it.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import TOKEN_PREDICTIONS, Fields, Stepper
from diffjax.solvers.grids import check_time_grid


class Solution(NamedTuple):
  """x: the state at ts[-1]; trajectory: the (N + 1, B, ...) states at every grid time, or
  None; nfe: int32 count of `fields.evaluate` calls; records: the stacked outputs of
  `record` after each step (leading axis N), or None."""
  x: Any
  trajectory: Any
  nfe: Any
  records: Any = None


def _shapes(tree):
  """The shape of an array, or the pytree of its leaves' shapes (a pytree state)."""
  return jax.tree.map(lambda a: a.shape, tree)


def check_fields(fields: Fields, names, x, t):
  """Traces one evaluation (no computation) and refuses predictions of the wrong shape
  (`check_predictions`)."""
  check_predictions(jax.eval_shape(fields.evaluate, x, jnp.asarray(t, jnp.float32)), names,
                    x)


def check_predictions(out, names, x):
  """Refuses predictions `out` (arrays or shapes) of the wrong shape for the state x:
  continuous predictions must be shaped like x (B, ...), logits like x + (V,). A pytree
  state (e.g. a graph's node features and adjacency) needs predictions of the same
  structure and leaf shapes."""
  for name in names:
    value = getattr(out, name)
    if name in TOKEN_PREDICTIONS:
      ok = value.shape[:-1] == x.shape
    else:
      ok = (jax.tree.structure(value) == jax.tree.structure(x)
            and _shapes(value) == _shapes(x))
    if not ok:
      expected = (f"{x.shape} + (vocabulary,)" if name in TOKEN_PREDICTIONS
                  else f"{_shapes(x)}")
      raise ValueError(f"The {name} field returned shape {_shapes(value)} for a state of "
                       f"shape {_shapes(x)}; it must return {expected}.")


def integrate(stepper: Stepper, fields: Fields, x0, ts, key=None, *,
              return_trajectory=False, record=None) -> Solution:
  """Runs `stepper` with `fields` from x0 at ts[0] through every time of ts.

  Args:
    stepper: a `Stepper`; its `needs` must be among `fields.names`.
    fields: the model's `Fields`.
    x0: (B, ...) state at ts[0], or a pytree of such arrays (fields then return
      predictions of the same structure).
    ts: (N + 1,) strictly monotone times in [0, 1] (increasing or decreasing).
    key: PRNG key; step i receives fold_in(key, i) (None for deterministic steppers).
    return_trajectory: also return the (N + 1, B, ...) states at every grid time (for a
      pytree state, the pytree of such arrays).
    record: optional record(x_next, state) -> pytree, stacked over the N steps (e.g. a
      stepper's data prediction for diagnostics).

  Returns:
    `Solution(x, trajectory, nfe, records)`.
  """
  fields.require(stepper.needs, "This sampler")
  ts = jnp.asarray(check_time_grid(ts), jnp.float32)
  evaluate = fields.evaluate

  def checked(x, t):
    # The shapes are checked as the stepper's own evaluation is traced: no extra trace.
    out = evaluate(x, t)
    check_predictions(out, stepper.needs, x)
    return out

  fields = Fields(checked, fields.names)
  state = stepper.init(x0, ts)

  def body(carry, inputs):
    x, state, nfe = carry
    i, t, t_next = inputs
    step_key = None if key is None else jax.random.fold_in(key, i)
    x_next, state, used = stepper.step(fields, x, state, t, t_next, step_key)
    outputs = (x_next if return_trajectory else None,
               None if record is None else record(x_next, state))
    return (x_next, state, nfe + jnp.asarray(used, jnp.int32)), outputs

  steps = jnp.arange(ts.shape[0] - 1)
  (x, _, nfe), (states, records) = jax.lax.scan(
      body, (x0, state, jnp.zeros((), jnp.int32)), (steps, ts[:-1], ts[1:]))
  trajectory = (jax.tree.map(lambda a, b: jnp.concatenate([a[None], b], 0), x0, states)
                if return_trajectory else None)
  return Solution(x, trajectory, nfe, records)
