"""TSDiff's observation self-guidance: an unconditional model guided towards observed
values, for imputation and forecasting.

"Predict, Refine, Synthesize: Self-Guiding Diffusion Models for Probabilistic Time Series
Forecasting" (Kollovieh et al., NeurIPS 2023, Sec. 3.1, eq. 7-9): with observations y on
a mask m of the series, p(y | x_t) is approximated through the model's denoised estimate
x1_hat(x_t) by exp(-E(x1_hat, y)) and the sampler follows s + scale grad_x log p(y | x_t)
(`diffjax.guidance.likelihood.denoiser_guidance`). Energies (summed over the observed
entries, per example):
  squared   |m * (x1_hat - y)|^2 (mean-square self-guidance, a Gaussian likelihood);
  quantile  sum m * rho_q(y - x1_hat), rho_q(u) = max(q u, (q - 1) u) (the pinball loss,
            an asymmetric Laplace likelihood: quantile self-guidance).
"""
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.guidance.likelihood import denoiser_guidance
from diffjax.guidance.method import (GUIDANCE_METHODS, Cost, GuidanceMethod, check_number,
                                     require_context)
from diffjax.guidance.model import traced
from diffjax.solvers import Guidance

ENERGIES = ("squared", "quantile")


def pinball(u, q):
  """rho_q(u) = max(q u, (q - 1) u), elementwise."""
  return jnp.maximum(q * u, (q - 1) * u)


def check_energy(energy, quantile):
  if energy not in ENERGIES:
    raise ConfigError(f"Unknown self-guidance energy {energy!r}; valid: "
                      f"{', '.join(ENERGIES)}.")
  if not traced(quantile) and not 0.0 < quantile < 1.0:
    raise ConfigError(f"The quantile must be in (0, 1); got {quantile}.")


def observation_energy(observed, mask, energy="squared", quantile=0.5):
  """E(x1) (B,) for x1 (B, ...): observed, mask shaped like x1 (mask 1 where observed)."""
  check_energy(energy, quantile)
  observed, mask = jnp.asarray(observed), jnp.asarray(mask, jnp.float32)

  def apply(x1):
    u = mask * (observed - x1)
    per = u ** 2 if energy == "squared" else pinball(u, quantile)
    return jnp.sum(per.reshape(per.shape[0], -1), -1)
  return apply


def self_guidance(fields, path, observed, mask, scale=1.0, energy="squared", quantile=0.5):
  """TSDiff self-guided fields: score s - scale grad_x E(x1_hat(x), observed)."""
  return denoiser_guidance(fields, path, observation_energy(observed, mask, energy,
                                                            quantile), scale)


def _check(section, sampler):
  del sampler
  check_number(section, "scale", 1.0)
  check_energy(section.get("energy", "squared"), check_number(section, "quantile", 0.5))


def _build(section, context):
  require_context(context, "tsdiff", "observed", "mask")
  return Guidance(self_guidance(context.model.conditional(), context.path, context.observed,
                                context.mask, section.get("scale", 1.0),
                                section.get("energy", "squared"),
                                section.get("quantile", 0.5)))


GUIDANCE_METHODS.register("tsdiff", GuidanceMethod(
    _build, _check, cost=lambda section, sampler: Cost(1.0, backward=True)))
