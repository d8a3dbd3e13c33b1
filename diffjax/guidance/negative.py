"""Negative guidance: classifier-free guidance toward the condition and away from one
class, the "safe latent diffusion"-style erasure at sampling time.

"Safe Latent Diffusion" (Schramowski et al., CVPR 2023, eq. 2-3, without its warm-up and
momentum) and the negative prompt of classifier-free guidance: with p_c the conditional,
p_u the unconditional and p_n the prediction under the class to avoid,

    p = p_u + w (p_c - p_u) - s (p_n - p_u)

(w = `scale`, s = `negative_scale`, the class `negative_class`; this package's convention
of w, `diffjax.guidance.model`). Asking for the avoided class itself gives p_u + (w - s)
(p_n - p_u): with s > w the sampler is pushed away from the class. One network call on
3B examples ([x, x, x] with [cond, null, negative]) per evaluation. Registered as
"negative" (sample.guidance.method); the class must be one of the model's.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields
from diffjax.errors import ConfigError
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceMethod, check_number
from diffjax.guidance.model import ConditionalModel
from diffjax.solvers import Guidance


def negative_mix(conditional, unconditional, negative, scale, negative_scale):
  """p_u + scale (p_c - p_u) - negative_scale (p_n - p_u) for every prediction given."""
  return jax.tree.map(lambda pc, pu, pn: pu + scale * (pc - pu) - negative_scale * (pn - pu),
                      conditional, unconditional, negative)


def negative_guidance(model: ConditionalModel, negative_class: int, scale=1.0,
                      negative_scale=1.0) -> Fields:
  """Fields of p_u + scale (p_c - p_u) - negative_scale (p_n - p_u) (module docstring);
  model: class labels (B,) as condition, with the null class."""
  null = model.require_null("Negative guidance")
  negative = jnp.full_like(null, negative_class)
  fields = model.fields_of(jnp.concatenate([model.cond, null, negative]))

  def evaluate(x, t):
    t = jnp.asarray(t, jnp.float32)
    three_t = t if t.ndim == 0 else jnp.concatenate([t, t, t])
    out = fields.evaluate(jnp.concatenate([x, x, x]), three_t)
    batch = x.shape[0]
    c, u, n = (jax.tree.map(lambda p, i=i: p[i * batch:(i + 1) * batch], out)
               for i in range(3))
    return negative_mix(c, u, n, scale, negative_scale)

  return Fields(evaluate, fields.names)


def check_negative_class(value, num_classes=None):
  """A class id (an int >= 0, below num_classes when known), or a ConfigError."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (
      num_classes is not None and value >= num_classes):
    bound = f" below {num_classes}" if num_classes is not None else ""
    raise ConfigError(f"sample.guidance.negative_class={value!r} must be a class id: an "
                      f"integer >= 0{bound}.")
  return value


def _check(section, sampler):
  del sampler
  check_number(section, "scale", 1.0)
  check_number(section, "negative_scale", 1.0)
  check_negative_class(section.get("negative_class", 0))


def _build(section, context):
  null = context.model.require_null("Negative guidance")
  num_classes = int(null[0]) if not isinstance(null, jax.core.Tracer) else None
  negative_class = check_negative_class(section.get("negative_class", 0), num_classes)
  return Guidance(negative_guidance(context.model, negative_class, section.get("scale", 1.0),
                                    section.get("negative_scale", 1.0)))


GUIDANCE_METHODS.register("negative", GuidanceMethod(
    _build, _check, needs_unconditional=True, cost=lambda section, sampler: Cost(3.0)))
