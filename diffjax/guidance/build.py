"""From a config section (sample.guidance) to a `Guidance`: any method on any trained run.

  guidance = build_guidance(config.sample.guidance, GuidanceContext(model, path, sampler))
  result = guided_sample(sampler, guidance, path, x0, key, num_steps=...)

Keys of the section (each method reads its own; the scale convention is p_u + w (p_c -
p_u), `diffjax.guidance.model`):
  method          none | cfg | cfgpp | adaptive | classifier | elucd | dps | reconstruction
                  | tsdiff | svdd  (`GUIDANCE_METHODS`)
  scale           cfg / adaptive: w; cfgpp: lambda in [0, 1]; classifier, elucd,
                  reconstruction, tsdiff: the strength of the likelihood term
  interval        cfg: (t_start, t_end) in [0, 1] where guidance applies
  threshold       adaptive: the cosine similarity at which the unconditional calls stop
  step_size       dps: zeta
  noise_std       reconstruction: the measurement noise std
  energy, quantile  tsdiff: "squared" or "quantile", and q
  tau1, ratio, amplitude  elucd: temperatures and the sine schedule's amplitude
  num_candidates, alpha   svdd: M and the temperature
What a method needs besides the model (measurements and operator, observations and mask,
a reward, a classifier) comes from the experiment in the `GuidanceContext`; a method
whose needs the experiment does not provide is refused naming them.
"""
from typing import Any, Callable, NamedTuple, Optional

from diffjax.errors import ConfigError
from diffjax.guidance.adaptive import adaptive_guidance
from diffjax.guidance.cfg import check_interval, classifier_free
from diffjax.guidance.cfgpp import cfgpp, cfgpp_fields, check_lambda
from diffjax.guidance.classifier import classifier_guidance, off_the_shelf_guidance
from diffjax.guidance.model import ONE_EVALUATION_SAMPLERS, ConditionalModel
from diffjax.guidance.reconstruction import check_operator, dps, reconstruction_guidance
from diffjax.guidance.sampling import Guidance
from diffjax.guidance.svdd import check_svdd, posterior_mean_value, svdd
from diffjax.guidance.tsdiff import self_guidance
from diffjax.registry import Registry

GUIDANCE_METHODS = Registry("guidance method")
STOCHASTIC_SAMPLERS = ("ancestral", "euler_maruyama", "ddim")


class GuidanceContext(NamedTuple):
  """What an experiment offers guidance. model: the `ConditionalModel` (for an
  unconditional run: fields_of(None) the model, cond None, null None); sampler: the
  sampler's name and sampler_options its options; the rest optional: measurements y and
  operator A (dps, reconstruction), observed values and mask (tsdiff), reward(x1) -> (B,)
  (svdd), classifier_logits(x1) -> (B, K) (elucd), classifier_log_prob(x, t) -> (B,)
  (classifier), state_shape (B, ...) for checks."""
  model: ConditionalModel
  path: Any
  sampler: str
  sampler_options: dict = {}
  measurements: Any = None
  operator: Optional[Callable] = None
  observed: Any = None
  mask: Any = None
  reward: Optional[Callable] = None
  classifier_logits: Optional[Callable] = None
  classifier_log_prob: Optional[Callable] = None
  state_shape: Any = None


def _need(context, method, *names):
  missing = [n for n in names if getattr(context, n) is None]
  if missing:
    raise ConfigError(f"Guidance method {method!r} needs {', '.join(missing)}, which this "
                      "experiment does not provide; choose another sample.guidance.method.")


def _base(context):
  return context.model.conditional()


@GUIDANCE_METHODS.register("none")
def _none(section, context):
  return Guidance(_base(context))


@GUIDANCE_METHODS.register("cfg")
def _cfg(section, context):
  return Guidance(classifier_free(context.model, section.get("scale", 1.0),
                                  tuple(section.get("interval", (0.0, 1.0)))))


@GUIDANCE_METHODS.register("cfgpp")
def _cfgpp(section, context):
  return Guidance(cfgpp_fields(context.model, context.path, section.get("scale", 1.0)),
                  lambda stepper, name: cfgpp(stepper, context.path, name))


@GUIDANCE_METHODS.register("adaptive")
def _adaptive(section, context):
  context.model.require_null("Adaptive Guidance")
  return Guidance(_base(context), lambda stepper, name: adaptive_guidance(
      stepper, context.model, section.get("scale", 1.0), section.get("threshold", 0.99), name))


@GUIDANCE_METHODS.register("classifier")
def _classifier(section, context):
  _need(context, "classifier", "classifier_log_prob")
  return Guidance(classifier_guidance(_base(context), context.path,
                                      context.classifier_log_prob, section.get("scale", 1.0)))


@GUIDANCE_METHODS.register("elucd")
def _elucd(section, context):
  _need(context, "elucd", "classifier_logits")
  if context.model.cond is None:
    raise ConfigError("Guidance method 'elucd' needs target class labels to guide to.")
  return Guidance(off_the_shelf_guidance(
      _base(context), context.path, context.classifier_logits, context.model.cond,
      section.get("scale", 1.0), section.get("tau1", 1.0), section.get("ratio", 0.5),
      section.get("amplitude", 0.3)))


def _check_measurements(context, method):
  _need(context, method, "measurements", "operator")
  if context.state_shape is not None:
    check_operator(context.operator, context.state_shape, context.measurements)


@GUIDANCE_METHODS.register("dps")
def _dps(section, context):
  _check_measurements(context, "dps")
  return Guidance(_base(context), lambda stepper, name: dps(
      stepper, context.operator, context.measurements, section.get("step_size", 1.0), name))


@GUIDANCE_METHODS.register("reconstruction")
def _reconstruction(section, context):
  _check_measurements(context, "reconstruction")
  return Guidance(reconstruction_guidance(
      _base(context), context.path, context.operator, context.measurements,
      section.get("noise_std", 0.1), section.get("scale", 1.0)))


@GUIDANCE_METHODS.register("tsdiff")
def _tsdiff(section, context):
  _need(context, "tsdiff", "observed", "mask")
  return Guidance(self_guidance(_base(context), context.path, context.observed,
                                context.mask, section.get("scale", 1.0),
                                section.get("energy", "squared"),
                                section.get("quantile", 0.5)))


@GUIDANCE_METHODS.register("svdd")
def _svdd(section, context):
  _need(context, "svdd", "reward")
  m, alpha = section.get("num_candidates", 8), section.get("alpha", 0.1)
  check_svdd(m, alpha)
  stochastic = context.sampler in STOCHASTIC_SAMPLERS and not (
      context.sampler == "ddim" and context.sampler_options.get("eta", 0.0) == 0)
  if not stochastic:
    raise ConfigError(f"SVDD draws its candidates from a stochastic sampler; got "
                      f"sample.solver={context.sampler!r}. Use ancestral, euler_maruyama "
                      "or ddim with eta > 0.")
  shared = context.sampler in ONE_EVALUATION_SAMPLERS
  return Guidance(_base(context), lambda stepper, name: svdd(
      stepper, posterior_mean_value(context.reward), m, alpha, shared_evaluation=shared))


def build_guidance(section, context: GuidanceContext) -> Guidance:
  """The `Guidance` of config section `section` (module docstring)."""
  method = section.get("method", "none") if section is not None else "none"
  return GUIDANCE_METHODS.get(method)(section, context)


NEEDS_UNCONDITIONAL = ("cfg", "cfgpp", "adaptive")


def check_guidance_section(section, conditional: bool):
  """Refuses a bad sample.guidance section before anything runs: an unknown method, a
  method needing the unconditional model on an unconditional run, an interval outside
  [0, 1], CFG++'s lambda outside [0, 1], SVDD's M < 1 or alpha <= 0."""
  if section is None:
    return
  method = section.get("method", "none")
  GUIDANCE_METHODS.get(method)
  if method in NEEDS_UNCONDITIONAL and not conditional:
    raise ConfigError(f"Guidance method {method!r} needs a conditional model with its "
                      "unconditional (null-class) model; this run is unconditional "
                      "(model.num_classes = 0).")
  if method == "cfg":
    check_interval(tuple(section.get("interval", (0.0, 1.0))))
  if method == "cfgpp":
    check_lambda(section.get("scale", 1.0))
  if method == "svdd":
    check_svdd(section.get("num_candidates", 8), section.get("alpha", 0.1))
