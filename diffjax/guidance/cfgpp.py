"""CFG++: denoise with the guided prediction, renoise with the unconditional one.

"CFG++: Manifold-constrained Classifier Free Guidance for Diffusion Models" (Chung et al.
2024, Algorithm 1 / eq. 10): with lambda in [0, 1], eps_l = eps_u + lambda (eps_c - eps_u)
and x1_l its data prediction (Tweedie's denoised estimate), a DDIM step goes to
    x_next = alpha_next x1_l + sigma_next eps_u,
i.e. it renoises with the unconditional noise where CFG's DDIM renoises with eps_l.
lambda = 0 is unconditional DDIM exactly.

Every sampler that evaluates its fields once per step at the current state can take this
step (its declaration's `evaluates_once_at_start`): from the state x = alpha x1_u + sigma eps_u
CFG++ moves to the renoised point x~ = alpha x1_l + sigma eps_u = x + alpha (x1_l - x1_u),
and runs the sampler's own step from x~ with the data prediction x1_l (the noise
prediction there is then eps_u). For DDIM this is the paper's step; for DPM-Solver++(1S)
the same; for DPM-Solver++(2M/3M), UniPC and the exponential PC, the multistep update of
the same renoised points (lambda = 0: the unconditional sampler exactly). Euler on the
rectified-flow path x_t = t x1 + (1 - t) eps (flow matching's linear path as a Gaussian
path) is DDIM exactly, so CFG++ covers flow matching's Euler step; on other Gaussian paths
Euler from x~ is the first-order approximation of the DDIM step; a stochastic
one-evaluation step (ancestral, Euler–Maruyama) takes its own step from x~ likewise, with
its fresh noise on top of the renoising with eps_u. Samplers that evaluate
several times per step (Heun, RK4, Dopri5, EDM's churn, Langevin correctors) have no single
renoising point and are refused, as are paths without a Gaussian view (use
path.name=rectified_flow instead of the two-sided `linear` path).
"""

from diffjax.core import Fields, Predictions, Stepper, require_gaussian, time_column
from diffjax.errors import ConfigError
from diffjax.fields import complete, gaussian_predictions
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceMethod, check_number
from diffjax.guidance.model import (GAUSSIAN_NAMES, ConditionalModel, check_one_evaluation,
                                    frozen_fields, mix, traced)
from diffjax.solvers import Guidance


def check_lambda(scale):
  if traced(scale):  # A traced scale (a sweep) cannot be checked.
    return scale
  if not 0.0 <= scale <= 1.0:
    raise ConfigError(f"CFG++'s lambda (sample.guidance.scale) must be in [0, 1]; got "
                      f"{scale}. (CFG++ lambda ~ 0.2-0.8 corresponds to CFG w ~ 2-12.)")
  return scale


def cfgpp_fields(model: ConditionalModel, path, scale) -> Fields:
  """Fields whose data prediction is the guided x1_l and whose noise prediction is the
  unconditional eps_u (deliberately not a consistent pair: `cfgpp` reads both), from one
  batched network call."""
  check_lambda(scale)
  require_gaussian(path, "CFG++")
  fields_of = model.fields_of
  model = ConditionalModel(lambda c: complete(fields_of(c), path), model.cond, model.null)
  joint, names = model.joint("CFG++")
  if not {"data", "noise"} <= set(names):
    raise ConfigError(f"CFG++ needs data and noise predictions; the model gives {names}.")

  def evaluate(x, t):
    c, u = joint(x, t)
    return Predictions(data=mix(c.data, u.data, scale), noise=u.noise)

  return Fields(evaluate, ("data", "noise"))


def cfgpp(base: Stepper, path, sampler) -> Stepper:
  """The CFG++ version of `base`, the stepper of `sampler` (its bound declaration or
  registered name, which must evaluate once at the start of a step): reads
  `cfgpp_fields`."""
  check_one_evaluation(sampler, "CFG++")
  view = require_gaussian(path, "CFG++")

  def step(fields, x, state, t, t_next, key):
    out = fields.evaluate(x, t)
    col = lambda c: time_column(c, x)
    renoised = col(view.alpha(t)) * out.data + col(view.sigma(t)) * out.noise
    predictions = gaussian_predictions(out.data, renoised, t, view, "data")
    return base.step(frozen_fields(predictions, GAUSSIAN_NAMES), renoised, state, t,
                     t_next, key)

  return Stepper(base.init, step, ("data", "noise"))


def _check(section, sampler):
  check_lambda(check_number(section, "scale", 1.0))
  if sampler is not None:
    check_one_evaluation(sampler, "CFG++")


def _build(section, context):
  return Guidance(cfgpp_fields(context.model, context.path, section.get("scale", 1.0)),
                  lambda stepper, sampler: cfgpp(stepper, context.path, sampler))


GUIDANCE_METHODS.register("cfgpp", GuidanceMethod(
    _build, _check, needs_unconditional=True, cost=lambda section, sampler: Cost(2.0)))
