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
The first steps use lower orders; the last steps do too where `final_order_rule` says so. Every stepper reads the data prediction x1_hat (`Predictions.data`) once
per step: directly from a network that predicts data or noise, by an exact conversion
otherwise (`diffjax.fields`).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian, stateless

_TINY = 1e-12


def _safe_div(a, b):
  return a / jnp.where(jnp.abs(b) < _TINY, _TINY, b)


def phis(h):
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


def ddim_step(x, x1_hat, alpha, sigma, alpha_next, sigma_next, eta=0.0, noise=None):
  """One generalised DDIM step from (alpha, sigma) to (alpha_next, sigma_next) for any
  Gaussian path ("Denoising Diffusion Implicit Models", Song, Meng & Ermon, eq. 12 and
  16): with eps_hat = (x - alpha x1_hat) / sigma and c = eta sigma_next sqrt(1 - e^{-2h}),
      x_next = alpha_next x1_hat + sqrt(sigma_next^2 - c^2) eps_hat + c noise.
  eta = 1 is the ancestral (DDPM posterior) step; e^{-h} = alpha sigma_next /
  (alpha_next sigma)."""
  eps_hat = _safe_div(x - alpha * x1_hat, sigma)
  return ddim_step_from_noise(x1_hat, eps_hat, alpha, sigma, alpha_next, sigma_next, eta,
                              noise)


def ddim_step_from_noise(x1_hat, eps_hat, alpha, sigma, alpha_next, sigma_next, eta=0.0,
                         noise=None):
  """The DDIM step of `ddim_step` from a denoised estimate x1_hat and the noise eps_hat it
  is renoised with (equal to (x - alpha x1_hat) / sigma for plain DDIM; CFG++ renoises
  with the unconditional noise instead)."""
  ratio = _safe_div(alpha * sigma_next, alpha_next * sigma)
  c = eta * sigma_next * jnp.sqrt(jnp.maximum(1 - ratio ** 2, 0.0))
  x_next = alpha_next * x1_hat + jnp.sqrt(jnp.maximum(sigma_next ** 2 - c ** 2, 0.0)) * eps_hat
  return x_next if noise is None else x_next + c * noise


def ddim(path, *, eta=0.0) -> Stepper:
  """DDIM on any Gaussian path; eta = 0 is deterministic (= DPM-Solver++ 1S), eta = 1 is
  ancestral sampling from the path's Gaussian posterior q(x_next | x, x1_hat) ("Denoising
  Diffusion Probabilistic Models", Ho et al., eq. 6-7). One field call per step."""
  view = require_gaussian(path, "ddim")
  deterministic = isinstance(eta, (int, float)) and eta == 0

  def step(fields, x, t, t_next, key):
    x1_hat = fields.evaluate(x, t).data
    if deterministic:
      noise = None
    else:
      if key is None:
        raise ValueError("ddim with eta > 0 is stochastic: pass a PRNG key.")
      noise = jax.random.normal(key, x.shape, x.dtype)
    x_next = ddim_step(x, x1_hat, view.alpha(t), view.sigma(t), view.alpha(t_next),
                       view.sigma(t_next), eta, noise)
    return x_next, 1

  return stateless(step, ("data",))


def ancestral(path) -> Stepper:
  """Ancestral sampling: DDIM with eta = 1 (the discrete reverse-diffusion step)."""
  return ddim(path, eta=1.0)


class MultistepState(NamedTuple):
  """index: the step about to be taken; num_steps: of the grid; x_prev: the (corrected)
  state at the previous time; m1, m2: data predictions at the two previous times t1, t2;
  lower_final: whether the last steps drop to lower orders (`final_order_rule`)."""
  index: jax.Array
  num_steps: jax.Array
  x_prev: jax.Array
  m1: jax.Array
  m2: jax.Array
  t1: jax.Array
  t2: jax.Array
  lower_final: jax.Array


# Below this many steps "auto" lowers the final orders (the reference schedulers' rule).
FEW_STEPS = 15


def final_order_rule(view, ts, lower_order_final):
  """Whether a multistep method's last steps use order min(order, remaining steps).

  True / False force it; "auto" (the default) lowers them only where it helps: with fewer
  than FEW_STEPS steps, where a high order on few, long steps is unstable (the rule of the
  DPM-Solver++ reference schedulers), and when the grid ends at sigma = 0, where higher
  orders are undefined (lambda = inf). Lowering them on a longer grid caps the observed
  order: on a uniform-t VP grid the last step spans a log-SNR range ~ log(1 + 1000 / N) / 2
  that hardly shrinks with N, and DPM-Solver++(2M) with a first-order last step converged
  at an erratic order 1.1-1.6 for N = 16-128 (1.85 only by N = 1024), against 2.0 without
  it. (Its errors were smaller there, by 2-3x: on a uniform-t VP grid the 2M extrapolation
  over that long last step is poor; the log-SNR grid, the default of these samplers, has
  neither problem and gives the same results either way for N >= 32.)
  """
  if lower_order_final == "auto":
    return (ts.shape[0] - 1 < FEW_STEPS) | (view.sigma(ts[-1]) <= _TINY)
  if not isinstance(lower_order_final, bool):
    raise ValueError(f"lower_order_final must be True, False or 'auto'; got "
                     f"{lower_order_final!r}.")
  return jnp.asarray(lower_order_final)


def multistep_init(view, lower_order_final):
  def init(x0, ts):
    zeros = jnp.zeros_like(x0)
    return MultistepState(jnp.zeros((), jnp.int32), jnp.asarray(ts.shape[0] - 1, jnp.int32),
                          x0, zeros, zeros, ts[0], ts[0],
                          final_order_rule(view, ts, lower_order_final))
  return init


def effective_order(order, index, num_steps, lower_final):
  """The order of step `index`: warm-up from 1, and where `lower_final` at most the number
  of remaining steps."""
  eff = jnp.minimum(order, index + 1)
  return jnp.where(lower_final, jnp.minimum(eff, num_steps - index), eff)


def dpm_solver_pp(path, *, order=2, lower_order_final="auto", corrector=False) -> Stepper:
  """DPM-Solver++ of order 1 (1S = DDIM), 2 (2M) or 3 (3M) in log-SNR, multistep, one field
  call per step; with `corrector` the exponential Adams–Moulton correction of the previous
  step with each new evaluation ("exponential_pc"; UniPC's structure, Zhao et al., "UniPC",
  Sec. 3.1, without extra calls).

  lower_order_final: whether the last steps use order min(order, remaining steps):
  True, False or "auto" (`final_order_rule`).
  """
  if order not in (1, 2, 3):
    raise ValueError(f"DPM-Solver++ order must be 1, 2 or 3; got {order}.")
  view = require_gaussian(path, "dpm_solver_pp")
  lam = view.log_snr

  def predict(x, m0, m1, m2, t, t_next, h0, h1, eff):
    h = lam(t_next) - lam(t)
    phi1, phi2, phi3 = phis(h)
    lead = _safe_div(view.sigma(t_next), view.sigma(t)) * x
    alpha_next = view.alpha(t_next)
    first = lead + alpha_next * phi1 * m0
    r = h0 / h
    second = lead + alpha_next * phi1 * ((1 + 0.5 / r) * m0 - (0.5 / r) * m1)
    d1, g2 = _third_order(m0, m1, m2, h, h0, h1)
    third = lead + alpha_next * (phi1 * m0 + phi2 * d1 + phi3 * g2)
    return jnp.where(eff >= 3, third, jnp.where(eff == 2, second, first))

  def correct(state, m_new, t):
    """Re-integrates the previous step t1 -> t with the polynomial through m2 (if any), m1
    and the new value m_new."""
    h = lam(t) - lam(state.t1)
    h0 = lam(state.t1) - lam(state.t2)
    phi1, phi2, phi3 = phis(h)
    have_prev2 = state.index >= 2
    d_new = m_new - state.m1                      # b + c of g(u) = m1 + b u + c u^2
    r = jnp.where(have_prev2, h0 / h, 1.0)
    d_old = (state.m1 - state.m2) / r             # b - c r
    c = jnp.where(have_prev2, (d_new - d_old) / (1 + r), 0.0)
    b = d_new - c
    lead = _safe_div(view.sigma(t), view.sigma(state.t1)) * state.x_prev
    return lead + view.alpha(t) * (phi1 * state.m1 + phi2 * b + phi3 * 2 * c)

  def step(fields, x, state, t, t_next, key):
    del key
    i = state.index
    m0 = fields.evaluate(x, t).data
    if corrector:
      x = jnp.where(i >= 1, correct(state, m0, t), x)
    h = lam(t_next) - lam(t)
    h0 = jnp.where(i >= 1, lam(t) - lam(state.t1), h)
    h1 = jnp.where(i >= 2, lam(state.t1) - lam(state.t2), h)
    eff = effective_order(order, i, state.num_steps, state.lower_final)
    x_next = predict(x, m0, state.m1, state.m2, t, t_next, h0, h1, eff)
    state = state._replace(index=i + 1, x_prev=x, m1=m0, m2=state.m1, t1=t, t2=state.t1)
    return x_next, state, 1

  return Stepper(multistep_init(view, lower_order_final), step, ("data",))
