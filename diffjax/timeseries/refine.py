"""TSDiff "refine": improve a base forecaster's predictions with an unconditional model's
likelihood.

"Predict, Refine, Synthesize: Self-Guiding Diffusion Models for Probabilistic Time Series
Forecasting" (Kollovieh et al., NeurIPS 2023, Sec. 3.2): a window y = (context c, horizon
h) is refined under the energy
    E(h) = L_theta((c, h)) + scale * R(h, g),
where L_theta is the model's denoising loss of the window (a stand-in for -log p_theta, the
ELBO up to weights and constants; here sum over `times` of |x1_hat(x_t, t) - y|^2, x_t
drawn on the model's path with fresh noise each iteration) and R ties h to the base
forecast g: "squared" |h - g|^2 (a Gaussian prior) or "quantile" sum rho_q(h - g) with
member i of S pulled to the quantile q_i = (i + 1) / (S + 1) (an asymmetric Laplace
prior; members of a point forecast then spread). Two refiners (`REFINERS`), each
`iterations` steps from h = g:
  langevin      energy-based sampling, h <- h - eta grad E + sqrt(2 eta) noise_scale xi
                (overdamped Langevin dynamics; an ensemble of S members)
  most_likely   maximum likelihood, h <- h - eta grad E (gradient descent; a point
                forecast per member)
The context stays fixed (the paper's code lets its prior hold it; here it is exact).

Two model energies L_theta (`ENERGIES`, the paper's two approximations of -log p_theta):
  denoising  the denoising loss at the fixed `times` (the paper's code's `fixed_t`)
  elbo       the continuous-time ELBO (Kingma et al., "Variational Diffusion Models",
             NeurIPS 2021, eq. 17 in x-prediction form):
                 L(y) = 1/2 int SNR'(t) E_eps |y - x1_hat(x_t, t)|^2 dt,
             SNR = alpha^2 / sigma^2, estimated with one t ~ U[times[0], times[1]) per
             window, fresh each iteration (the paper's code's random t); over the whole
             range and for the exact denoiser it is -log p(y) up to a constant (tested on
             a Gaussian). Needs a Gaussian path; the range excludes the data end, where
             SNR' diverges and a trained model's error does not vanish.
"""
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from diffjax.core import Fields, require_gaussian, time_column
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.guidance.tsdiff import pinball
from diffjax.registry import Registry

REGULARIZERS = ("squared", "quantile")


class Refiner(NamedTuple):
  """update(h, gradient, key, step_size, noise_scale) -> h; stochastic: draws noise."""
  update: Callable
  stochastic: bool


REFINERS = Registry("refiner")
REFINERS.register("langevin", Refiner(
    lambda h, g, key, eta, s: h - eta * g + jnp.sqrt(2 * eta) * s * jax.random.normal(
        key, h.shape), True))
REFINERS.register("most_likely", Refiner(lambda h, g, key, eta, s: h - eta * g, False))


def denoising_energy(fields: Fields, path, times: Sequence[float]):
  """energy(y (B, L), key) -> (B,): sum over t in `times` of |x1_hat(x_t, t) - y|^2 with
  x_t = path.sample(key, t, x0, y) and x0 from the path's source (one-sided paths)."""
  fields = complete(fields, path)
  fields.require(("data",), "TSDiff refinement")
  times = tuple(float(t) for t in times)

  def energy(y, key):
    total = jnp.zeros(y.shape[:1])
    for i, t in enumerate(times):
      k_source, k_path = jax.random.split(jax.random.fold_in(key, i))
      x0 = path.source_sample(k_source, y.shape)
      x_t = path.sample(k_path, jnp.full(y.shape[:1], t), x0, y)
      residual = fields.evaluate(x_t, jnp.full(y.shape[:1], t)).data - y
      total = total + jnp.sum(residual.reshape(y.shape[0], -1) ** 2, -1)
    return total
  return energy


def elbo_energy(fields: Fields, path, times: Sequence[float]):
  """energy(y (B, L), key) -> (B,): one-sample estimate of the continuous-time ELBO
  1/2 int_{t0}^{t1} SNR'(t) E |x1_hat(x_t, t) - y|^2 dt, (t0, t1) = times (module
  docstring): (t1 - t0) * SNR'(t) / 2 * |x1_hat - y|^2 at t ~ U[t0, t1)."""
  gaussian = require_gaussian(path, "The ELBO refinement energy")
  fields = complete(fields, path)
  fields.require(("data",), "TSDiff refinement")
  low, high = (float(t) for t in times)

  def energy(y, key):
    k_time, k_source, k_path = jax.random.split(key, 3)
    t = jax.random.uniform(k_time, y.shape[:1], minval=low, maxval=high)
    x0 = path.source_sample(k_source, y.shape)
    x_t = path.sample(k_path, t, x0, y)
    residual = fields.evaluate(x_t, t).data - y
    # SNR = exp(2 lambda), lambda the half log-SNR: SNR' / 2 = lambda' exp(2 lambda).
    weight = gaussian.dlog_snr(t) * jnp.exp(2 * gaussian.log_snr(t))
    return (high - low) * weight * jnp.sum(residual.reshape(y.shape[0], -1) ** 2, -1)
  return energy


def _check_denoising_times(times):
  if not times or any(not 0.0 <= t < 1.0 for t in times):
    raise ConfigError(f"Refinement times must be a non-empty list in [0, 1); got "
                      f"{tuple(times)}.")


def _check_elbo_times(times):
  if len(times) != 2 or not 0.0 <= times[0] < times[1] < 1.0:
    raise ConfigError(f"The elbo refinement energy integrates over times = (t0, t1) with "
                      f"0 <= t0 < t1 < 1; got {tuple(times)}.")


class Energy(NamedTuple):
  """build(fields, path, times) -> energy(y, key) -> (B,); check(times) refuses bad
  times in one line."""
  build: Callable
  check: Callable


ENERGIES = Registry("refinement energy")
ENERGIES.register("denoising", Energy(denoising_energy, _check_denoising_times))
ENERGIES.register("elbo", Energy(elbo_energy, _check_elbo_times))


def member_quantiles(num_members):
  """(S,) quantile levels (i + 1) / (S + 1) of members i = 0..S-1."""
  return (jnp.arange(num_members) + 1.0) / (num_members + 1)


def check_refinement(method, regularizer, scale, step_size, iterations, noise_scale, times,
                     energy="denoising"):
  """Refuses bad refinement settings with one line each."""
  REFINERS.get(method)
  ENERGIES.get(energy).check(tuple(times))
  if regularizer not in REGULARIZERS:
    raise ConfigError(f"Unknown refinement regularizer {regularizer!r}; valid: "
                      f"{', '.join(REGULARIZERS)}.")
  for name, value in (("scale", scale), ("step_size", step_size), ("noise_scale",
                                                                   noise_scale)):
    if not value >= 0:
      raise ConfigError(f"The refinement {name} must be >= 0; got {value}.")
  if not (isinstance(iterations, int) and iterations >= 0):
    raise ConfigError(f"The refinement iterations must be an integer >= 0; got "
                      f"{iterations!r}.")
  if not times or any(not 0.0 <= t < 1.0 for t in times):
    raise ConfigError(f"Refinement times must be a non-empty list in [0, 1); got "
                      f"{tuple(times)}.")


def refine(fields: Fields, path, contexts, base, key, *, num_members, method="langevin",
           regularizer="quantile", scale=1.0, step_size=0.01, iterations=20,
           noise_scale=1.0, times=(0.8,), model_weight=1.0, energy="denoising"):
  """Refined forecasts (N, S, horizon) of windows with contexts (N, context) and base
  forecasts (N, horizon) (or (N, S, horizon), sorted over members for "quantile"), for a
  model of whole windows (context + horizon,) given by its `fields` on `path`.
  model_weight multiplies the model's energy L_theta: 0 runs the same refiner on the
  prior R alone, the control that separates what the model adds from the spread the
  prior and the noise give a point forecast. energy names L_theta (`ENERGIES`): the
  denoising loss at `times`, or the ELBO over the range `times` = (t0, t1)."""
  check_refinement(method, regularizer, scale, step_size, iterations, noise_scale, times,
                   energy)
  refiner = REFINERS.get(method)
  contexts = jnp.asarray(contexts, jnp.float32)
  base = jnp.asarray(base, jnp.float32)
  n, context = contexts.shape
  if base.ndim == 2:
    base = jnp.repeat(base[:, None], num_members, 1)
  horizon = base.shape[-1]
  c = jnp.repeat(contexts[:, None], num_members, 1).reshape(n * num_members, context)
  g = base.reshape(n * num_members, horizon)
  q = jnp.tile(member_quantiles(num_members), n)
  model_energy = ENERGIES.get(energy).build(fields, path, times) if model_weight else None

  def prior(h):
    u = h - g
    per = u ** 2 if regularizer == "squared" else pinball(-u, time_column(q, u))
    return jnp.sum(per, -1)

  def total(h, k):
    model = 0.0 if model_energy is None else model_weight * model_energy(
        jnp.concatenate([c, h], -1), k)
    return jnp.sum(model + scale * prior(h))

  def body(i, h):
    k_energy, k_step = jax.random.split(jax.random.fold_in(key, i))
    return refiner.update(h, jax.grad(total)(h, k_energy), k_step, step_size, noise_scale)

  refined = jax.lax.fori_loop(0, iterations, body, g)
  return refined.reshape(n, num_members, horizon)
