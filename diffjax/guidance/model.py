"""What guidance works on: a conditional model with its null condition, and the pieces
every method shares (batched conditional + unconditional evaluation, mixing predictions,
handing a base stepper predictions computed once).

Convention of every guidance scale here (the config key sample.guidance.scale): the guided
prediction is p_u + w (p_c - p_u) ("Classifier-Free Diffusion Guidance", Ho & Salimans,
eq. 6 written with w = 1 + their w): w = 0 is the unconditional model, w = 1 the
conditional one, w > 1 extrapolates past it. The other common convention (1 + w') p_c -
w' p_u is w = 1 + w' (`scale_from_conditional_convention`). Since velocity, score, data
and noise predictions are affine in the noise prediction with coefficients that depend on
(x, t) only (`diffjax.fields`), mixing any one of them with weight w mixes all of them
with the same w: every prediction of the fields is mixed alike.
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from diffjax.core import PREDICTION_NAMES, Fields, Predictions, time_column
from diffjax.errors import ConfigError
from diffjax.solvers import SAMPLERS, Sampler, sampler_for

# The predictions a Gaussian path's `gaussian_predictions` fills.
GAUSSIAN_NAMES = ("velocity", "score", "data", "noise")


def traced(value) -> bool:
  """Whether a parameter is a tracer (a sweep under jit), whose value cannot be checked."""
  return isinstance(value, jax.core.Tracer)


def scale_from_conditional_convention(w_prime):
  """The scale w of p_u + w (p_c - p_u) that equals (1 + w') p_c - w' p_u."""
  return 1.0 + w_prime


def declared(sampler) -> Sampler:
  """A sampler's bound declaration: `sampler` itself, or for a registered name its
  declaration with the default options (`diffjax.solvers.sampler_for`)."""
  return sampler_for(sampler) if isinstance(sampler, str) else sampler


def check_one_evaluation(sampler, who: str):
  """Refuses a sampler (a bound `Sampler` or a registered name) whose steps do not
  evaluate once, at their start (`Sampler.evaluates_once_at_start`): the guidance method
  `who` computes the predictions there and hands them to the step."""
  sampler = declared(sampler)
  if not sampler.evaluates_once_at_start:
    valid = [n for n in SAMPLERS if SAMPLERS.get(n).evaluates_once_at_start
             and not SAMPLERS.get(n).tokens]
    raise ConfigError(f"{who} needs a sampler that evaluates the model once per step, at "
                      f"the current state; got sample.solver={sampler.name!r} "
                      f"({sampler.evaluations} evaluations per step). Valid: "
                      f"{', '.join(valid)}.")


@dataclasses.dataclass(frozen=True)
class ConditionalModel:
  """A model that takes a condition, with the condition to sample with and its null.

  fields_of(cond) -> `Fields` of the model under a (B, ...) condition (any leading batch);
  cond: the (B, ...) condition of the samples; null: the (B, ...) null condition (the
  unconditional model of condition dropout), or None for a run trained without dropout.
  `diffjax.conditioning.class_condition` / `array_condition` give (cond, null).
  """
  fields_of: Callable[[Any], Fields]
  cond: Any
  null: Any = None

  def conditional(self) -> Fields:
    return self.fields_of(self.cond)

  def unconditional(self, who="This guidance method") -> Fields:
    return self.fields_of(self.require_null(who))

  def require_null(self, who):
    if self.null is None:
      raise ConfigError(f"{who} needs the unconditional model, and this run has none: "
                        "train a conditional model with condition dropout "
                        "(train.label_dropout > 0, model.num_classes > 0).")
    return self.null

  def joint(self, who="This guidance method"):
    """evaluate(x, t) -> (conditional Predictions, unconditional Predictions) from ONE
    network call on the batch [x, x] with conditions [cond, null]; and the names."""
    null = self.require_null(who)
    fields = self.fields_of(jax.tree.map(lambda c, n: jnp.concatenate([c, n]), self.cond,
                                         null))

    def evaluate(x, t):
      t = jnp.asarray(t, jnp.float32)
      both_t = t if t.ndim == 0 else jnp.concatenate([t, t])
      out = fields.evaluate(jnp.concatenate([x, x]), both_t)
      batch = x.shape[0]
      return (jax.tree.map(lambda p: p[:batch], out),
              jax.tree.map(lambda p: p[batch:], out))

    return evaluate, fields.names


def mix(conditional: Predictions, unconditional: Predictions, w) -> Predictions:
  """p_u + w (p_c - p_u) for every prediction given; w a scalar or (B,)."""
  def one(c, u):
    weight = w if jnp.ndim(w) == 0 else time_column(w, c)
    return u + weight * (c - u)
  return jax.tree.map(one, conditional, unconditional)


def frozen_fields(predictions: Predictions, names) -> Fields:
  """Fields that return `predictions` wherever they are evaluated: handed to a base step
  that evaluates once, at the point where the predictions were computed."""
  return Fields(lambda x, t: predictions, tuple(n for n in PREDICTION_NAMES if n in names))


def scalar_time(t, who):
  t = jnp.asarray(t, jnp.float32)
  if t.ndim:
    raise ValueError(f"{who} runs inside a sampler step, at one time for the whole batch; "
                     f"got t of shape {t.shape}.")
  return t
