"""Exponential integrators for Gaussian paths: DDIM, DPM-Solver++ (1S, 2M, 3M) and an
exponential predictor-corrector, all driven by the data prediction x1_hat(x, t).

On x_t = alpha x1 + sigma eps with lambda = log(alpha / sigma), the probability-flow ODE
has the exact solution from (x_s, s) to t ("DPM-Solver++: Fast Solver for Guided Sampling
of Diffusion Probabilistic Models", Lu et al., eq. 9, in diffjax time)
    x_t = (sigma_t / sigma_s) x_s + sigma_t int_{lambda_s}^{lambda_t} e^lambda x1_hat dlambda,
and with h = lambda_t - lambda_s the exponential weights are
    phi1 = 1 - e^{-h},  phi2 = (h - 1 + e^{-h}) / h,  phi3 = 1/2 - (h - 1 + e^{-h}) / h^2,
the integrals of e^{u - h} (u / h)^k / k! times alpha_t / h^0 (k = 0, 1, 2). Orders:
  1S  x_t = (sigma_t / sigma_s) x_s + alpha_t phi1 m0 (= DDIM, Song et al., eq. 12, eta = 0);
  2M  D = (1 + 1/(2r)) m0 - 1/(2r) m1, r = h_prev / h (DPM-Solver++, Algorithm 2);
  3M  the Taylor expansion of x1_hat in lambda to second order with backward divided
      differences of m0, m1, m2: alpha_t (phi1 m0 + phi2 D1 + phi3 g''), g'' = 2 D2
      (derived here from eq. 9; see the note in `_third_order`).
The first steps use lower orders; with `lower_order_final` the last steps do too (as in
the DPM-Solver++ reference schedulers), which keeps the step into sigma = 0 finite.
All samplers call the field once per step; x1_hat comes from the velocity through
`diffjax.fields.data_prediction`.
"""
import jax
import jax.numpy as jnp

from diffjax import fields as fields_lib
from diffjax.solvers.grids import time_grid
from diffjax.solvers.ode import check_field_shape
from diffjax.solvers.sampling import SAMPLERS, SampleResult

_TINY = 1e-12


def _needs_gaussian_path(path, sampler):
  if not hasattr(path, "log_snr"):
    raise ValueError(f"The {sampler} sampler needs a Gaussian path (alpha, sigma); got "
                     f"{getattr(path, 'name', path)!r}. Use an ODE or SDE sampler.")


def _safe_div(a, b):
  return a / jnp.where(jnp.abs(b) < _TINY, _TINY, b)


def _phis(h):
  """phi1, phi2, phi3 of the module docstring for a scalar h > 0 (expm1 for accuracy)."""
  em1 = jnp.expm1(-h)                        # e^{-h} - 1
  phi1 = -em1
  phi2 = 1 + em1 / h
  phi3 = 0.5 - (h + em1) / h ** 2
  return phi1, phi2, phi3


def _third_order(m0, m1, m2, h, h0, h1):
  """D1 ~ g'(0) and g''(0) for g(u) = x1_hat(lambda_s + u h) from three back values.

  r0 = h0 / h, r1 = h1 / h; D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1,
  D2 = (D1_0 - D1_1) / (r0 + r1) ~ g''/2, D1 = D1_0 + r0 D2 ~ g'(0). (The reference
  multistep 3M code weights D2 by phi3 where this Taylor derivation gives 2 phi3.)
  """
  r0, r1 = h0 / h, h1 / h
  d1_0, d1_1 = (m0 - m1) / r0, (m1 - m2) / r1
  d2 = (d1_0 - d1_1) / (r0 + r1)
  return d1_0 + r0 * d2, 2 * d2


def _multistep(fields, path, x0, ts, order, lower_order_final, corrector,
               return_trajectory):
  """The DPM-Solver++ family on the grid ts; `corrector` adds the exponential
  Adams-Moulton correction that reuses each new evaluation (one field call per step)."""
  check_field_shape(fields.velocity, x0, ts[0])
  n = ts.shape[0] - 1
  alphas, sigmas, lams = path.alpha(ts), path.sigma(ts), path.log_snr(ts)

  def predict(x, m0, m1, m2, i, eff):
    h = lams[i + 1] - lams[i]
    h0 = jnp.where(i >= 1, lams[i] - lams[jnp.maximum(i - 1, 0)], h)
    h1 = jnp.where(i >= 2, lams[jnp.maximum(i - 1, 0)] - lams[jnp.maximum(i - 2, 0)], h)
    phi1, phi2, phi3 = _phis(h)
    lead = _safe_div(sigmas[i + 1], sigmas[i]) * x
    first = lead + alphas[i + 1] * phi1 * m0
    r = h0 / h
    second = lead + alphas[i + 1] * phi1 * ((1 + 0.5 / r) * m0 - (0.5 / r) * m1)
    d1, g2 = _third_order(m0, m1, m2, h, h0, h1)
    third = lead + alphas[i + 1] * (phi1 * m0 + phi2 * d1 + phi3 * g2)
    return jnp.where(eff >= 3, third, jnp.where(eff == 2, second, first))

  def correct(x_prev, m_prev, m_prev2, m_new, i, have_prev2):
    """Re-integrates step i - 1 -> i with the polynomial through m_prev2 (if any), m_prev
    and the new value m_new (UniPC's structure, Zhao et al., "UniPC", Sec. 3.1)."""
    h = lams[i] - lams[i - 1]
    h0 = lams[i - 1] - lams[jnp.maximum(i - 2, 0)]
    phi1, phi2, phi3 = _phis(h)
    d_new = m_new - m_prev                        # b + c of g(u) = m_prev + b u + c u^2
    r = jnp.where(have_prev2, h0 / h, 1.0)
    d_old = (m_prev - m_prev2) / r                # b - c r
    c = jnp.where(have_prev2, (d_new - d_old) / (1 + r), 0.0)
    b = d_new - c
    lead = _safe_div(sigmas[i], sigmas[i - 1]) * x_prev
    return lead + alphas[i] * (phi1 * m_prev + phi2 * b + phi3 * 2 * c)

  def body(carry, i):
    x, x_prev, m1, m2 = carry
    m0 = fields_lib.data_prediction(fields, path, x, ts[i])
    if corrector:
      corrected = correct(x_prev, m1, m2, m0, jnp.maximum(i, 1), i >= 2)
      x = jnp.where(i >= 1, corrected, x)
    eff = jnp.minimum(order, i + 1)
    if lower_order_final:
      eff = jnp.minimum(eff, n - i)
    x_next = predict(x, m0, m1, m2, i, eff)
    return (x_next, x, m0, m1), (x_next if return_trajectory else None)

  zeros = jnp.zeros_like(x0)
  (x1, _, _, _), path_states = jax.lax.scan(body, (x0, x0, zeros, zeros), jnp.arange(n))
  trajectory = (jnp.concatenate([x0[None], path_states], axis=0)
                if return_trajectory else None)
  return x1, trajectory


def _dpm_solver_pp_sampler(order, corrector=False):
  name = "exponential_pc" if corrector else f"dpm_solver_pp_{'1s' if order == 1 else f'{order}m'}"

  def sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
              grid="log_snr", lower_order_final=True, **grid_options):
    del key
    _needs_gaussian_path(path, name)
    ts = time_grid(grid, num_steps, path, **grid_options)
    x, trajectory = _multistep(fields, path, x0, ts, order, lower_order_final, corrector,
                               return_trajectory)
    return SampleResult(x, trajectory, ts.shape[0] - 1)

  sampler.__doc__ = (f"{name}: exponential integrator of order {order} in log-SNR"
                     f"{' with an exponential corrector' if corrector else ''}; one "
                     "field call per step (see `diffjax.solvers.exponential`).")
  return sampler


SAMPLERS.register("dpm_solver_pp_1s", _dpm_solver_pp_sampler(1))
SAMPLERS.register("dpm_solver_pp_2m", _dpm_solver_pp_sampler(2))
SAMPLERS.register("dpm_solver_pp_3m", _dpm_solver_pp_sampler(3))
SAMPLERS.register("exponential_pc", _dpm_solver_pp_sampler(2, corrector=True))


def ddim_step(x, x1_hat, alpha, sigma, alpha_next, sigma_next, eta=0.0, noise=None):
  """One generalised DDIM step from (alpha, sigma) to (alpha_next, sigma_next) for any
  Gaussian path ("Denoising Diffusion Implicit Models", Song, Meng & Ermon, eq. 12 and
  16): with eps_hat = (x - alpha x1_hat) / sigma and c = eta sigma_next sqrt(1 - e^{-2h}),
      x_next = alpha_next x1_hat + sqrt(sigma_next^2 - c^2) eps_hat + c noise.
  eta = 1 is the ancestral (DDPM posterior) step; e^{-h} = alpha sigma_next /
  (alpha_next sigma)."""
  eps_hat = _safe_div(x - alpha * x1_hat, sigma)
  ratio = _safe_div(alpha * sigma_next, alpha_next * sigma)
  c = eta * sigma_next * jnp.sqrt(jnp.maximum(1 - ratio ** 2, 0.0))
  x_next = alpha_next * x1_hat + jnp.sqrt(jnp.maximum(sigma_next ** 2 - c ** 2, 0.0)) * eps_hat
  return x_next if noise is None else x_next + c * noise


def _ddim(fields, path, x0, key, ts, eta, return_trajectory):
  check_field_shape(fields.velocity, x0, ts[0])
  alphas, sigmas = path.alpha(ts), path.sigma(ts)

  def body(x, i):
    x1_hat = fields_lib.data_prediction(fields, path, x, ts[i])
    deterministic = isinstance(eta, (int, float)) and eta == 0
    noise = (None if deterministic
             else jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype))
    x_next = ddim_step(x, x1_hat, alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1],
                       eta, noise)
    return x_next, (x_next if return_trajectory else None)

  x1, states = jax.lax.scan(body, x0, jnp.arange(ts.shape[0] - 1))
  trajectory = jnp.concatenate([x0[None], states], 0) if return_trajectory else None
  return x1, trajectory


@SAMPLERS.register("ddim")
def ddim_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                 grid="uniform", eta=0.0, **grid_options):
  """DDIM on any Gaussian path; eta = 0 is deterministic (= DPM-Solver++ 1S)."""
  _needs_gaussian_path(path, "ddim")
  ts = time_grid(grid, num_steps, path, **grid_options)
  x, trajectory = _ddim(fields, path, x0, key, ts, eta, return_trajectory)
  return SampleResult(x, trajectory, num_steps)


@SAMPLERS.register("ancestral")
def ancestral_sampler(fields, path, x0, key, *, num_steps, return_trajectory=False,
                      grid="uniform", **grid_options):
  """Ancestral sampling: draw x_next from the Gaussian posterior q(x_next | x, x1_hat) of
  the path ("Denoising Diffusion Probabilistic Models", Ho et al., eq. 6-7; DDIM eta = 1),
  the discrete reverse-diffusion step for any Gaussian path."""
  _needs_gaussian_path(path, "ancestral")
  ts = time_grid(grid, num_steps, path, **grid_options)
  x, trajectory = _ddim(fields, path, x0, key, ts, 1.0, return_trajectory)
  return SampleResult(x, trajectory, num_steps)
