"""From a config section (sample.guidance) to a `Guidance`: any method on any trained run.

  guidance = build_guidance(config.sample.guidance, GuidanceContext(model, path, sampler))
  result = sample(sampler, None, path, x0, key, num_steps=..., guidance=guidance)

Keys of the section (each method reads its own; the scale convention is p_u + w (p_c -
p_u), `diffjax.guidance.model`):
  method          none | cfg | cfgpp | adaptive | linear_ag | classifier | elucd | dps |
                  reconstruction | steered | tsdiff | svdd | input | negative
                  (`GUIDANCE_METHODS`)
  scale           cfg / adaptive: w; cfgpp: lambda in [0, 1]; classifier, elucd,
                  reconstruction, tsdiff: the strength of the likelihood term
  interval        cfg: (t_start, t_end) in [0, 1] where guidance applies
  threshold       adaptive: the cosine similarity at which the unconditional calls stop
  coefficients, exact_steps  linear_ag: the (num_steps, 4) table of `fit_linear_ag` and the
                  first steps that call the unconditional model
  step_size       dps: zeta (normalised: the step is zeta grad |y - A x1_hat|^2 / |y -
                  A x1_hat|, Chung et al. App. C; on="data" it has length 2 zeta)
  on              dps: "state" (the paper's gradient through the denoiser) or "data" (the
                  step on the denoised estimate, no network gradient)
  noise_std       reconstruction: the measurement noise std
  loops           steered: passes per step (Steered Diffusion's consistency loop); its
                  step_size is eta (unnormalised, on the denoised estimate)
  energy, quantile  tsdiff: "squared" or "quantile", and q
  tau1, ratio, amplitude  elucd: temperatures and the sine schedule's amplitude
  through         elucd: the gradient through the "denoiser" (default) or at the
                  "estimate" x1_hat only
  num_candidates, alpha   svdd: M and the temperature
  negative_class, negative_scale  negative: the class guided away from and its weight s
  renoise         input: a fresh source draw for the known entries each step (true) or
                  the sampler's initial draw (false)
What a method needs besides the model (measurements and operator, observations and mask,
a reward, a classifier) comes from the experiment in the `GuidanceContext`; a method
whose needs the experiment does not provide is refused naming them. Each method is a
registered `GuidanceMethod` (`diffjax.guidance.method`) in its own module; this module
only reads their declarations.
"""
from diffjax.errors import ConfigError
from diffjax.guidance import adaptive as _adaptive  # The modules below register methods.
from diffjax.guidance import cfg as _cfg
from diffjax.guidance import cfgpp as _cfgpp
from diffjax.guidance import classifier as _classifier
from diffjax.guidance import input_guidance as _input_guidance
from diffjax.guidance import linear_ag as _linear_ag
from diffjax.guidance import negative as _negative
from diffjax.guidance import reconstruction as _reconstruction
from diffjax.guidance import steered as _steered
from diffjax.guidance import svdd as _svdd
from diffjax.guidance import tsdiff as _tsdiff
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceContext
from diffjax.solvers import Guidance, sampler_for


def _method(section) -> str:
  return "none" if section is None else section.get("method", "none")


def build_guidance(section, context: GuidanceContext) -> Guidance:
  """The `Guidance` of config section `section` (module docstring), checked against the
  sampler it will wrap (context.sampler with context.sampler_options)."""
  entry = GUIDANCE_METHODS.get(_method(section))
  section = {} if section is None else section
  entry.check(section, sampler_for(context.sampler, context.sampler_options))
  return entry.build(section, context)


def check_guidance_section(section, conditional: bool, sampler=None, sampler_options=None):
  """Refuses a bad sample.guidance section before anything runs: an unknown method, a
  method needing the unconditional model on an unconditional run, and whatever the
  method's own check refuses (an interval outside [0, 1], a scale that is not a finite
  number, CFG++'s lambda outside [0, 1], SVDD's M < 1 or alpha <= 0, ...). With the
  sampler's name (and options) also a sampler the method cannot wrap."""
  if section is None:
    return
  method = _method(section)
  entry = GUIDANCE_METHODS.get(method)
  if entry.needs_unconditional and not conditional:
    raise ConfigError(f"Guidance method {method!r} needs a conditional model with its "
                      "unconditional (null-class) model; this run is unconditional "
                      "(model.num_classes = 0).")
  entry.check(section, None if sampler is None else sampler_for(sampler, sampler_options))


def guidance_cost(section, sampler: str, sampler_options=None) -> Cost:
  """The declared network work per step of `section`'s method with `sampler`, relative to
  the unguided sampler (`diffjax.guidance.method.Cost`)."""
  return GUIDANCE_METHODS.get(_method(section)).cost(
      {} if section is None else section, sampler_for(sampler, sampler_options))
