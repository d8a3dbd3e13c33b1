"""Input guidance: the known part of the data re-imposed after every sampler step.

"SeisFusion: Constrained Diffusion Model with Input Guidance for 3D Seismic Data
Interpolation and Reconstruction" (2024, Sec. III): the observed traces y (mask m, 1 where
recorded) are put back into the state after each reverse step at the noise level of the
next time, so the model only generates the missing part and keeps it consistent with the
recorded one (the replacement of "RePaint", Lugmayr et al. 2022, without resampling):
    x_{i+1} <- m * y_{t_{i+1}} + (1 - m) * x'_{i+1},  y_t = a(t) z + b(t) y,
on a one-sided path (x_t = a(t) x0 + b(t) x1, x0 ~ N(0, s^2 I)). z is the sampler's own
initial draw x0 (renoise=False: the known entries then follow the straight path between
it and y, which suits deterministic samplers) or a fresh draw each step (renoise=True, as
RePaint, for stochastic samplers). At t = 1 the known entries are y itself, bit for bit,
whatever the sampler or path. Registered as guidance method "input".
"""
import jax
import jax.numpy as jnp

from diffjax.core import Stepper
from diffjax.errors import ConfigError
from diffjax.guidance.method import (GUIDANCE_METHODS, Cost, GuidanceMethod,
                                     require_context)
from diffjax.solvers import Guidance


def check_mask(mask_shape, state_shape):
  """Refuses a mask that does not broadcast to the state's shape (B, ...)."""
  try:
    ok = jnp.broadcast_shapes(tuple(mask_shape), tuple(state_shape)) == tuple(state_shape)
  except ValueError:
    ok = False
  if not ok:
    raise ConfigError(f"The input-guidance mask has shape {tuple(mask_shape)}, which does "
                      f"not broadcast to the state's shape {tuple(state_shape)}.")


def input_guidance(base: Stepper, path, observed, mask, renoise=False) -> Stepper:
  """`base` with the known entries (mask (1 or B, ...) of 0/1, shaped like the state)
  replaced by the observation `observed` (B, ...) at each step's time (module docstring)."""
  if not path.one_sided:
    raise ConfigError(f"Input guidance noises the observation on a one-sided path (x0 ~ "
                      f"N(0, s^2 I)); {path.name!r} is two-sided.")
  observed = jnp.asarray(observed, jnp.float32)
  known = jnp.asarray(mask) > 0

  def init(x0, ts):
    return base.init(x0, ts), x0

  def step(fields, x, state, t, t_next, key):
    inner, initial = state
    check_mask(known.shape, x.shape)
    x_next, inner, nfe = base.step(fields, x, inner, t, t_next, key)
    z = initial
    if renoise and key is not None:
      z = path.source_sample(jax.random.fold_in(key, 0x5EED), x.shape, x.dtype)
    noised = path.interpolate(jnp.full(x.shape[:1], t_next), z, observed)
    target = jnp.where(t_next >= 1.0, observed, noised)
    return jnp.where(known, target, x_next), (inner, initial), nfe

  return Stepper(init, step, base.needs)


def _check(section, sampler):
  renoise = section.get("renoise", False)
  if not isinstance(renoise, bool):
    raise ConfigError(f"sample.guidance.renoise must be true or false; got {renoise!r}.")
  if sampler is not None and sampler.tokens:
    raise ConfigError(f"Input guidance re-imposes known entries of a continuous state; "
                      f"sampler {sampler.name!r} draws tokens.")


def _build(section, context):
  require_context(context, "input", "observed", "mask")
  if context.state_shape is not None:
    check_mask(jnp.shape(context.mask), context.state_shape)
  return Guidance(context.model.conditional(), lambda stepper, sampler: input_guidance(
      stepper, context.path, context.observed, context.mask,
      bool(section.get("renoise", False))))


# A replacement after each step: no network work beyond the sampler's own.
GUIDANCE_METHODS.register("input", GuidanceMethod(
    _build, _check, restores=False, cost=lambda section, sampler: Cost(1.0)))
