"""Classifier guidance: with a noise-aware classifier, and with an off-the-shelf classifier
of clean data calibrated as in EluCD.

Noise-aware ("Diffusion Models Beat GANs on Image Synthesis", Dhariwal & Nichol, Sec. 4;
Song et al., eq. 14): the guided score is s(x) + scale grad_x log p_t(y | x) with a
classifier of noisy x_t; for scale 1 and the exact classifier it is the conditional score
(tested on the class-conditional Gaussian mixture).

Off-the-shelf ("Elucidating The Design Space of Classifier-Guided Diffusion Generation",
Ma et al. 2023, Sec. 4, and their code AlexMaOLS/EluCD): a classifier f of CLEAN data
(logits (B, K)) is applied to the denoised estimate x1_hat(x_t), with
  - calibrated log-probability  log p~(y | x1) = tau1 f_y - logsumexp(tau2 f), the joint
    temperature tau1 and the margin temperature tau2 = ratio * tau1 (ratio = 1/2 in the
    paper's best setting; ratio 1 is the temperature-tau1 softmax);
  - the gradient of log p~(y | x1_hat(x_t)) with respect to x_t through the denoiser
    (through="denoiser", the default: the chain rule, one network backward pass), or
    with respect to x1_hat alone (through="estimate": one classifier backward pass, no
    network gradient). The estimate-only gradient is not damped by dx1_hat/dx_t at high
    noise, where x1_hat is nearly the same blurry mean for every sample: on the digits it
    steered every sample of a class to the same image (README), the denoiser gradient
    did not;
  - softplus smoothing: the classifier's ReLUs replaced by softplus_beta, whose gradients
    are smooth (`softplus_relu`, for a classifier built with a pluggable activation);
  - a sine-shaped step-size schedule: the paper adds 0.3 max_variance sin(pi s) to the
    DDPM variance multiplying the gradient (s: the diffusion time); here the strength is
    scale (1 + amplitude sin(pi t)), largest mid-way and equal to `scale` at both ends.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields, require_gaussian
from diffjax.errors import ConfigError
from diffjax.guidance.likelihood import add_to_score, denoiser_guidance, score_guidance
from diffjax.guidance.method import (GUIDANCE_METHODS, Cost, GuidanceMethod, check_number,
                                     require_context)
from diffjax.solvers import Guidance

GRADIENTS = ("denoiser", "estimate")


def classifier_guidance(fields: Fields, path, log_prob, scale=1.0) -> Fields:
  """Noise-aware classifier guidance: log_prob(x, t) -> (B,) log p_t(y | x) for the
  target labels (close over them)."""
  return score_guidance(fields, path, log_prob, scale)


def calibrated_log_prob(logits, labels, tau1=1.0, ratio=0.5):
  """EluCD's tau1 f_y - logsumexp(tau2 f) with tau2 = ratio tau1: logits (B, K),
  labels (B,) -> (B,)."""
  if tau1 <= 0 or ratio <= 0:
    raise ConfigError(f"EluCD temperatures must be positive; got tau1={tau1}, "
                      f"ratio={ratio}.")
  picked = jnp.take_along_axis(logits, labels[:, None], -1)[:, 0]
  return tau1 * picked - jax.scipy.special.logsumexp(ratio * tau1 * logits, axis=-1)


def sine_schedule(scale, amplitude=0.3):
  """t -> scale (1 + amplitude sin(pi t))."""
  return lambda t: scale * (1.0 + amplitude * jnp.sin(jnp.pi * jnp.asarray(t, jnp.float32)))


def softplus_relu(beta):
  """A ReLU replacement: softplus(beta x) / beta (-> ReLU as beta -> inf)."""
  if beta <= 0:
    raise ConfigError(f"softplus beta must be positive; got {beta}.")
  return lambda x: jax.nn.softplus(beta * x) / beta


def check_gradient(through):
  if through not in GRADIENTS:
    raise ConfigError(f"Off-the-shelf classifier guidance takes its gradient through the "
                      f"'denoiser' or at the 'estimate'; got through={through!r}.")


def off_the_shelf_guidance(fields: Fields, path, logits_fn, labels, scale=1.0, tau1=1.0,
                           ratio=0.5, amplitude=0.3, through="denoiser") -> Fields:
  """EluCD guidance (module docstring): logits_fn(x1 (B, ...)) -> (B, K) logits of a
  clean-data classifier; labels (B,) the target classes; through: "denoiser" or
  "estimate", where the gradient is taken."""
  view = require_gaussian(path, "Off-the-shelf classifier guidance")
  fields.require(("data",), "Off-the-shelf classifier guidance")
  check_gradient(through)
  schedule = sine_schedule(scale, amplitude)
  log_prob = lambda x1: calibrated_log_prob(logits_fn(x1), labels, tau1, ratio)
  if through == "denoiser":
    return denoiser_guidance(fields, path, lambda x1: -log_prob(x1), schedule)

  def evaluate(x, t):
    out = fields.evaluate(x, t)
    gradient = jax.grad(lambda x1: jnp.sum(log_prob(x1)))(out.data)
    return add_to_score(out, schedule(t) * gradient, x, t, view)

  return Fields(evaluate, fields.names)


def _check_scale(section, sampler):
  del sampler
  check_number(section, "scale", 1.0)


def _build_classifier(section, context):
  require_context(context, "classifier", "classifier_log_prob")
  return Guidance(classifier_guidance(context.model.conditional(), context.path,
                                      context.classifier_log_prob, section.get("scale", 1.0)))


# The classifier's own forward and backward passes come on top.
GUIDANCE_METHODS.register("classifier", GuidanceMethod(
    _build_classifier, _check_scale, cost=lambda section, sampler: Cost(1.0)))


def _check_elucd(section, sampler):
  del sampler
  for key, default in (("scale", 1.0), ("tau1", 1.0), ("ratio", 0.5), ("amplitude", 0.3)):
    check_number(section, key, default)
  check_gradient(section.get("through", "denoiser"))


def _build_elucd(section, context):
  require_context(context, "elucd", "classifier_logits")
  labels = context.target_labels
  labels = context.model.cond if labels is None else labels
  if labels is None:
    raise ConfigError("Guidance method 'elucd' needs target class labels to guide to.")
  return Guidance(off_the_shelf_guidance(
      context.model.conditional(), context.path, context.classifier_logits, labels,
      section.get("scale", 1.0), section.get("tau1", 1.0), section.get("ratio", 0.5),
      section.get("amplitude", 0.3), section.get("through", "denoiser")))


GUIDANCE_METHODS.register("elucd", GuidanceMethod(
    _build_elucd, _check_elucd, cost=lambda section, sampler: Cost(
        1.0, backward=section.get("through", "denoiser") == "denoiser")))
