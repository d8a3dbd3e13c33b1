"""Adaptive Guidance: stop the unconditional calls once they no longer change the step.

"Adaptive Guidance: Training-free Acceleration of Conditional Diffusion Models" (Castillo
et al. 2023, Sec. 4): during CFG sampling the conditional and unconditional noise
predictions align as the sample forms; once their cosine similarity cos(eps_c, eps_u)
passes a threshold gamma_bar, the remaining steps use the conditional prediction alone,
one network call on B examples instead of one on 2B. Here the switch is taken for the
whole batch when every example's cosine has passed the threshold (so that the saved work
is real on a batched accelerator), and it is final.

nfe counts network evaluations per example: 2 for a guided step (conditional and
unconditional, in one batched call), 1 after the switch; `saved_fraction(nfe, N)` =
1 - nfe / (2 N) is the fraction of CFG's evaluations saved. The cosine is that of the
noise predictions (the paper's choice; `compare`): near pure noise eps_c ~ eps_u ~ x /
sigma whatever the condition, so on low-dimensional data, where the guided and unguided
samples part early, compare="data" (the denoised estimates, which align only as the
sample forms) is the informative criterion.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Fields, Stepper
from diffjax.errors import ConfigError
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceMethod, check_number
from diffjax.guidance.model import (ConditionalModel, check_one_evaluation, frozen_fields,
                                    mix, scalar_time, traced)
from diffjax.solvers import Guidance


class AdaptiveState(NamedTuple):
  """base: the base stepper's state; switched: whether the unconditional calls stopped."""
  base: Any
  switched: jax.Array


def cosine_similarity(a, b):
  """(B, ...) x 2 -> (B,) cosine of the flattened examples."""
  a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
  dot = jnp.sum(a * b, -1)
  return dot / jnp.maximum(jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1), 1e-12)


def saved_fraction(nfe, num_steps):
  """The fraction of CFG's 2 N evaluations per example that Adaptive Guidance saved."""
  return 1.0 - float(nfe) / (2.0 * num_steps)


def check_threshold(threshold):
  if not traced(threshold) and not -1.0 <= threshold <= 1.0:
    raise ConfigError(f"The Adaptive Guidance threshold is a cosine similarity in [-1, 1]; "
                      f"got {threshold}.")


def adaptive_guidance(base: Stepper, model: ConditionalModel, scale, threshold,
                      sampler, compare="noise") -> Stepper:
  """CFG with scale w until min over the batch of cos(eps_c, eps_u) >= threshold, then
  the conditional model alone (module docstring). base: the stepper of `sampler` (its
  bound declaration or registered name, which must evaluate once at the start of a
  step). The returned stepper carries its own model; the fields `integrate` hands it (the
  conditional ones) are only checked."""
  check_threshold(threshold)
  check_one_evaluation(sampler, "Adaptive Guidance")
  if compare not in ("noise", "data", "velocity"):
    raise ConfigError(f"Adaptive Guidance compares the noise, data or velocity "
                      f"predictions; got compare={compare!r}.")
  joint, names = model.joint("Adaptive Guidance")
  conditional_fields = model.conditional()

  def init(x0, ts):
    return AdaptiveState(base.init(x0, ts), jnp.zeros((), bool))

  def step(fields, x, state, t, t_next, key):
    del fields
    t = scalar_time(t, "Adaptive Guidance")

    def guided(_):
      c, u = joint(x, t)
      cos = cosine_similarity(getattr(c, compare), getattr(u, compare))
      return mix(c, u, scale), jnp.mean(cos)

    def conditional(_):
      return conditional_fields.evaluate(x, t), jnp.ones((), jnp.float32)

    predictions, cos = jax.lax.cond(state.switched, conditional, guided, None)
    x_next, base_state, _ = base.step(frozen_fields(predictions, names), x, state.base, t,
                                      t_next, key)
    nfe = jnp.where(state.switched, 1, 2)
    return x_next, AdaptiveState(base_state, state.switched | (cos >= threshold)), nfe

  return Stepper(init, step, base.needs)


def _check(section, sampler):
  check_number(section, "scale", 1.0)
  check_threshold(check_number(section, "threshold", 0.99))
  if sampler is not None:
    check_one_evaluation(sampler, "Adaptive Guidance")


def _build(section, context):
  context.model.require_null("Adaptive Guidance")
  return Guidance(context.model.conditional(), lambda stepper, sampler: adaptive_guidance(
      stepper, context.model, section.get("scale", 1.0), section.get("threshold", 0.99),
      sampler))


# CFG's 2 until the switch, 1 after it.
GUIDANCE_METHODS.register("adaptive", GuidanceMethod(
    _build, _check, needs_unconditional=True, cost=lambda section, sampler: Cost(2.0)))
