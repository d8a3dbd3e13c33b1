"""Classifier-free guidance with a guidance interval, from one batched network call.

"Classifier-Free Diffusion Guidance" (Ho & Salimans, eq. 6): the guided prediction is
p_u + w (p_c - p_u) (this module's convention, see `diffjax.guidance.model`), for the
noise, score, data, velocity (and token logits) alike. The conditional and unconditional
predictions come from one network evaluation on the batch [x, x] with conditions
[cond, null], not from two calls.

"Applying Guidance in a Limited Interval Improves Sample and Distribution Quality in
Diffusion Models" (Kynkäänniemi et al. 2024, eq. 2): guidance only for noise levels in
(sigma_lo, sigma_hi]; elsewhere the conditional model alone (w = 1), which then costs a
network call on the batch x only. Here the interval is [t_start, t_end] in diffjax time
(t = 0 noise, t = 1 data); `interval_from_noise_levels` converts their noise levels
sigma~ = sigma / alpha on a Gaussian path.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields, require_gaussian
from diffjax.errors import ConfigError
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceMethod, check_number
from diffjax.guidance.model import ConditionalModel, mix
from diffjax.solvers import Guidance


def check_interval(interval):
  """(t_start, t_end) with 0 <= t_start <= t_end <= 1, or a ConfigError."""
  try:
    start, end = (float(v) for v in interval)
  except (TypeError, ValueError):
    raise ConfigError(f"The guidance interval must be a pair (t_start, t_end); got "
                      f"{interval!r}.") from None
  if not 0.0 <= start <= end <= 1.0:
    raise ConfigError(f"The guidance interval (t_start, t_end) = ({start}, {end}) must "
                      "satisfy 0 <= t_start <= t_end <= 1 (diffjax time: 0 noise, 1 data).")
  return start, end


def interval_from_noise_levels(path, sigma_low, sigma_high):
  """[t_start, t_end] of the noise levels sigma~ = sigma / alpha in [sigma_low, sigma_high]
  on a Gaussian path (Kynkäänniemi et al. give EDM levels, e.g. (0.28, 5.42] for
  ImageNet-512): t = lambda^{-1}(-log sigma~)."""
  view = require_gaussian(path, "interval_from_noise_levels")
  with jax.ensure_compile_time_eval():
    t_start = float(view.time_at_log_snr(-jnp.log(sigma_high)))
    t_end = float(view.time_at_log_snr(-jnp.log(sigma_low)))
  return check_interval((t_start, t_end))


def classifier_free(model: ConditionalModel, scale, interval=(0.0, 1.0)) -> Fields:
  """Fields of p_u + scale (p_c - p_u) inside the interval, p_c outside.

  model: a `ConditionalModel` with a null condition; scale: w (0: unconditional, 1:
  conditional); interval: (t_start, t_end) in [0, 1]. Inside, one network call on 2B
  examples; outside, one call on B (with a scalar t the branch not taken is not run).
  """
  start, end = check_interval(interval)
  joint, names = model.joint("Classifier-free guidance")
  conditional = model.conditional()
  full = start <= 0.0 and end >= 1.0

  def guided(x, t):
    c, u = joint(x, t)
    return mix(c, u, scale)

  if full:
    return Fields(guided, names)

  def evaluate(x, t):
    t = jnp.asarray(t, jnp.float32)
    inside = (t >= start) & (t <= end)
    if t.ndim == 0:
      return jax.lax.cond(inside, guided, conditional.evaluate, x, t)
    c, u = joint(x, t)
    return mix(c, u, jnp.where(inside, scale, 1.0))

  return Fields(evaluate, names)


def _check(section, sampler):
  del sampler
  check_number(section, "scale", 1.0)
  check_interval(section.get("interval", (0.0, 1.0)))


def _build(section, context):
  return Guidance(classifier_free(context.model, section.get("scale", 1.0),
                                  tuple(section.get("interval", (0.0, 1.0)))))


# One call on 2B inside the interval, on B outside.
GUIDANCE_METHODS.register("cfg", GuidanceMethod(
    _build, _check, needs_unconditional=True, cost=lambda section, sampler: Cost(2.0)))
