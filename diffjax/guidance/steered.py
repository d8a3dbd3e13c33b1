"""Steered Diffusion: the denoised estimate moved down the loss of an inverse model.

"Steered Diffusion: A Generalized Framework for Plug-and-Play Conditional Image Synthesis"
(Nair et al., ICCV 2023, Sec. 3): a model trained without the condition c is steered at
sampling time by the loss of an "inverse model" f that maps an image to the condition
space (a degradation such as masking or downsampling, or a pretrained network: a
regressor, a classifier, a learned degradation). The energy is evaluated on the model's
implicit clean estimate x1_hat(x_t), not on the noisy state, so any network of clean
images serves as f:
    L(x_t) = |c - f(x1_hat(x_t))|^2                              (per example)
    x1_hat' = x1_hat(x_t) - eta grad_{x_t} L(x_t)                 (the steered estimate)
and the sampler's own step (DDIM on a Gaussian path) renoises from x1_hat' instead of
x1_hat. The paper's "implicit consistency" loop repeats each step `loops` times: after a
steered step t -> t', the state is noised back from t' to t by the path's forward
transition q(x_t | x_t') and steered again, so the steered estimate and the state agree
before moving on (the last pass keeps its x_t').

Unlike DPS (`diffjax.guidance.reconstruction.dps`) the step eta is not normalised by the
residual, and the correction acts on the estimate the sampler renoises from, not on the
next state. When f(x1_hat) = c exactly the gradient vanishes and the step is the plain
sampler's (tested). Registered as guidance method "steered": context.operator is f,
context.measurements is c.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian, time_column
from diffjax.errors import ConfigError
from diffjax.fields import gaussian_predictions
from diffjax.guidance.method import (GUIDANCE_METHODS, Cost, GuidanceMethod, check_number,
                                     require_context)
from diffjax.guidance.model import (GAUSSIAN_NAMES, check_one_evaluation, frozen_fields,
                                    traced)
from diffjax.guidance.reconstruction import check_operator
from diffjax.solvers import Guidance


def check_loops(loops):
  if not (isinstance(loops, int) and not isinstance(loops, bool) and loops >= 1):
    raise ConfigError(f"Steered Diffusion's sample.guidance.loops must be an integer >= 1; "
                      f"got {loops!r}.")


def check_eta(step_size):
  if not traced(step_size) and not step_size >= 0:
    raise ConfigError(f"Steered Diffusion's step size eta must be >= 0; got {step_size}.")


def inverse_model_loss(inverse_model, condition):
  """x1 (B, ...) -> |c - f(x1)|^2 per example (B,)."""
  def loss(x1):
    r = (condition - inverse_model(x1)).reshape(condition.shape[0], -1)
    return jnp.sum(r ** 2, -1)
  return loss


def steered_estimate(fields, x, t, loss, step_size):
  """The model's predictions at (x (B, ...), scalar t) and the steered estimate
  x1_hat - eta grad_x loss(x1_hat(x)) (gradient through the denoiser)."""
  data_of = lambda z: (lambda out: (out.data, out))(fields.evaluate(z, t))
  x1_hat, pullback, out = jax.vjp(data_of, x, has_aux=True)
  gradient = pullback(jax.grad(lambda z: jnp.sum(loss(z)))(x1_hat))[0]
  return out, x1_hat - step_size * gradient


def renoise_back(view, x_next, t_next, t, key):
  """A draw of q(x_t | x_{t_next}) on a Gaussian path x_t = alpha(t) x1 + sigma(t) eps with
  t_next nearer the data: (alpha_t / alpha_n) x_n + sqrt(sigma_t^2 - (alpha_t sigma_n /
  alpha_n)^2) eps."""
  col = lambda c: time_column(jnp.broadcast_to(c, x_next.shape[:1]), x_next)
  ratio = col(view.alpha(t)) / jnp.maximum(col(view.alpha(t_next)), 1e-12)
  var = col(view.sigma(t)) ** 2 - (ratio * col(view.sigma(t_next))) ** 2
  return ratio * x_next + jnp.sqrt(jnp.maximum(var, 0.0)) * jax.random.normal(
      key, x_next.shape, x_next.dtype)


def steered(base: Stepper, inverse_model, condition, step_size, sampler, path,
            loops=1) -> Stepper:
  """Steered Diffusion (module docstring) around `base`, the stepper of `sampler` (which
  must evaluate once at the start of a step): inverse_model f(x1 (B, ...)) -> (B, ...)
  like `condition` c; step_size eta >= 0; loops >= 1 passes per step (more than one
  needs step keys: the state is renoised between passes)."""
  check_eta(step_size)
  check_loops(loops)
  check_one_evaluation(sampler, "Steered Diffusion")
  view = require_gaussian(path, "Steered Diffusion")
  loss = inverse_model_loss(inverse_model, jnp.asarray(condition, jnp.float32))

  def one_pass(fields, x, state, t, t_next, key):
    _, corrected = steered_estimate(fields, x, t, loss, step_size)
    predictions = gaussian_predictions(corrected, x, t, view, "data")
    return base.step(frozen_fields(predictions, GAUSSIAN_NAMES), x, state, t, t_next, key)

  def step(fields, x, state, t, t_next, key):
    check_operator(inverse_model, x.shape, condition)
    nfe = 0
    for i in range(loops - 1):
      if key is None:
        raise ConfigError("Steered Diffusion with loops > 1 renoises the state between "
                          "passes and needs the sampler's step keys.")
      x_next, _, count = one_pass(fields, x, state, t, t_next, jax.random.fold_in(key, i))
      x = renoise_back(view, x_next, t_next, t, jax.random.fold_in(key, 0x100 + i))
      nfe = nfe + count
    x_next, state, count = one_pass(fields, x, state, t, t_next, key)
    return x_next, state, nfe + count

  return Stepper(base.init, step, tuple(dict.fromkeys(base.needs + ("data",))))


def _check(section, sampler):
  check_eta(check_number(section, "step_size", 1.0))
  check_loops(section.get("loops", 1))
  if sampler is not None:
    check_one_evaluation(sampler, "Steered Diffusion")


def _build(section, context):
  require_context(context, "steered", "measurements", "operator")
  if context.state_shape is not None:
    check_operator(context.operator, context.state_shape, context.measurements)
  return Guidance(context.model.conditional(), lambda stepper, sampler: steered(
      stepper, context.operator, context.measurements, section.get("step_size", 1.0),
      sampler, context.path, section.get("loops", 1)))


# Each pass: one forward and one backward pass of the network, `loops` passes per step.
GUIDANCE_METHODS.register("steered", GuidanceMethod(
    _build, _check, restores=True, cost=lambda section, sampler: Cost(
        float(section.get("loops", 1)), backward=True)))
