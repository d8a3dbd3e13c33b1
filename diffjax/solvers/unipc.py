"""UniPC: a multistep predictor (UniP) with a free corrector (UniC) on the data prediction.

"UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models"
(Zhao, Bai, Rao, Zhou & Lu, NeurIPS 2023), Sec. 3 and Algorithms 2-3, in diffjax time on a
Gaussian path (lambda = log(alpha / sigma) increases from noise to data). With
h = lambda_t - lambda_s, the data predictions m_k at earlier times, r_k = (lambda_k -
lambda_s) / h and D_k = (m_k - m_s) / r_k, one step of order p is

    x_t = (sigma_t / sigma_s) x_s + alpha_t (1 - e^{-h}) m_s - alpha_t B(h) sum_k rho_k D_k,

where the rho_k solve the order conditions R rho = g: R_{ik} = r_k^(i-1) and
g_i = i! phi_{i+1}(-h) / B(h) with phi_1(u) = (e^u - 1) / u - 1 and phi_{i+1}(u) =
phi_i(u) / u - 1 / (i + 1)! (their eq. 6-8, written for the data prediction). B(h) =
e^{-h} - 1 is the paper's "bh2" variant (its recommended choice for guided and
unconditional sampling at small budgets), B(h) = -h its "bh1".
- UniP of order p uses p - 1 earlier values (the first step, p = 1, is DDIM); for p = 2
  the paper fixes rho = 1/2.
- UniC then corrects the point just computed, once the next model evaluation m_t at it is
  known, by the same formula with D_t = m_t - m_s added as the last difference (r = 1) and
  p conditions (rho = 1/2 for p = 1). The corrected point starts the next step but m_t is
  not recomputed there, so the corrector costs no evaluation: one call per step.
The order warms up from 1 and, where `final_order_rule` says so, ends at min(order,
remaining steps). Orders 1 to 3.
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian
from diffjax.solvers.exponential import effective_order, final_order_rule


class UniPCState(NamedTuple):
  """index: the step about to be taken; num_steps of the grid; x_prev: the corrected state
  at t1; m1, m2, m3 and t1, t2, t3: the data predictions at the three previous times;
  order: the order of the previous predictor step (the corrector's order); lower_final:
  whether the last steps drop to lower orders."""
  index: jax.Array
  num_steps: jax.Array
  x_prev: jax.Array
  m1: jax.Array
  m2: jax.Array
  m3: jax.Array
  t1: jax.Array
  t2: jax.Array
  t3: jax.Array
  order: jax.Array
  lower_final: jax.Array


def order_conditions(h, order, variant="bh2"):
  """(g_1..g_order, B(h)) of the module docstring for a scalar h > 0."""
  u = -h
  big_b = jnp.expm1(u) if variant == "bh2" else u
  phi = jnp.expm1(u) / u - 1
  g = []
  for i in range(1, order + 1):
    g.append(phi * math.factorial(i) / big_b)
    phi = phi / u - 1 / math.factorial(i + 1)
  return jnp.stack(g), big_b


def _solve(r, g):
  """rho with sum_k r_k^(i-1) rho_k = g_i, i = 1..len(r) (a tiny Vandermonde system)."""
  matrix = jnp.stack([r ** i for i in range(r.shape[0])])
  return jnp.linalg.solve(matrix, g)


def unipc(path, *, order=2, variant="bh2", lower_order_final="auto",
          corrector=True) -> Stepper:
  """UniPC-p with the bh1 / bh2 variant (module docstring); one field call per step.
  lower_order_final: True, False or "auto" (`diffjax.solvers.exponential.final_order_rule`).
  """
  if order not in (1, 2, 3):
    raise ValueError(f"UniPC order must be 1, 2 or 3; got {order}.")
  if variant not in ("bh1", "bh2"):
    raise ValueError(f"Unknown UniPC variant {variant!r}; valid: bh1, bh2.")
  view = require_gaussian(path, "unipc")
  lam = view.log_snr

  def base(x, m, s, t):
    """The order-1 (DDIM) part from (x, m) at s to t, and h, g, B(h) for the order 3."""
    h = lam(t) - lam(s)
    g, big_b = order_conditions(h, 3, variant)
    lead = (view.sigma(t) / view.sigma(s)) * x + view.alpha(t) * (-jnp.expm1(-h)) * m
    return lead, h, g, big_b

  def safe_ratio(lam_k, lam_s, h, available):
    return jnp.where(available, (lam_k - lam_s) / h, -1.0)

  def predictor(x, state, m0, t, t_next, p):
    lead, h, g, big_b = base(x, m0, t, t_next)
    r1 = safe_ratio(lam(state.t1), lam(t), h, state.index >= 1)
    r2 = safe_ratio(lam(state.t2), lam(t), h, state.index >= 2)
    d1, d2 = (state.m1 - m0) / r1, (state.m2 - m0) / r2
    scale = view.alpha(t_next) * big_b
    second = lead - scale * 0.5 * d1
    rho = _solve(jnp.stack([r1, r2]), g[:2])
    third = lead - scale * (rho[0] * d1 + rho[1] * d2)
    return jnp.where(p >= 3, third, jnp.where(p == 2, second, lead))

  def correct(state, m_new, t):
    p = state.order
    lead, h, g, big_b = base(state.x_prev, state.m1, state.t1, t)
    r1 = safe_ratio(lam(state.t2), lam(state.t1), h, state.index >= 2)
    r2 = safe_ratio(lam(state.t3), lam(state.t1), h, state.index >= 3)
    d1, d2 = (state.m2 - state.m1) / r1, (state.m3 - state.m1) / r2
    d_new = m_new - state.m1
    scale = view.alpha(t) * big_b
    first = lead - scale * 0.5 * d_new
    rho2 = _solve(jnp.stack([r1, jnp.ones_like(r1)]), g[:2])
    second = lead - scale * (rho2[0] * d1 + rho2[1] * d_new)
    rho3 = _solve(jnp.stack([r1, r2, jnp.ones_like(r1)]), g)
    third = lead - scale * (rho3[0] * d1 + rho3[1] * d2 + rho3[2] * d_new)
    return jnp.where(p >= 3, third, jnp.where(p == 2, second, first))

  def init(x0, ts):
    zeros = jnp.zeros_like(x0)
    t0 = ts[0]
    return UniPCState(jnp.zeros((), jnp.int32), jnp.asarray(ts.shape[0] - 1, jnp.int32),
                      x0, zeros, zeros, zeros, t0, t0, t0, jnp.ones((), jnp.int32),
                      final_order_rule(view, ts, lower_order_final))

  def step(fields, x, state, t, t_next, key):
    del key
    i = state.index
    m0 = fields.evaluate(x, t).data
    if corrector:
      x = jnp.where(i >= 1, correct(state, m0, t), x)
    p = effective_order(order, i, state.num_steps, state.lower_final)
    x_next = predictor(x, state, m0, t, t_next, p)
    state = UniPCState(i + 1, state.num_steps, x, m0, state.m1, state.m2, t, state.t1,
                       state.t2, p, state.lower_final)
    return x_next, state, 1

  return Stepper(init, step, ("data",))
