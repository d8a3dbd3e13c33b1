"""Adaptive Dormand–Prince 5(4) for dx/dt = f(x, t), on device with `lax.while_loop`.

Tableau: Dormand & Prince, "A family of embedded Runge-Kutta formulae" (1980), as printed
in Hairer, Nørsett & Wanner, "Solving Ordinary Differential Equations I", Table 5.2 (II.5);
first-same-as-last, so an accepted step costs 6 field evaluations. The local error is the
difference to an embedded 4th-order solution: by default Shampine's ("Some Practical
Runge-Kutta Formulas", Math. Comp. 46, 1986), whose error weights are 2/3 of Dormand &
Prince's own (`embedded="dormand_prince"`); the default is the estimate diffrax and
torchdiffeq use, so a tolerance means the same here as there. It is measured in the RMS
norm scaled by atol + rtol max(|x|, |x_new|) (Hairer I, eq. 4.10-4.11) over the whole state
(batch included). The step size follows h_new = h * safety * err^(-beta1) * err_prev^beta2:
by default the integral controller (beta1 = 1/5, beta2 = 0; Hairer I, eq. 4.13), or with
beta1 = 0.7/5, beta2 = 0.4/5 the PI controller (Hairer & Wanner, "Solving ODEs II", IV.2,
eq. 2.43c). An accepted step never shrinks the next one and a rejected step shrinks it by
at least `safety` (the clipping diffrax and torchdiffeq apply): with a noisy error
estimate, such as a network field far from its asymptotic regime, shrinking after a success
only buys rejections and field evaluations. The initial step follows Hairer I, II.4.
Works in either time direction (t1 < t0 integrates backwards, as the likelihood does).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import stateless

_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
      (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_A_MATRIX = tuple(row + (0.0,) * (7 - len(row)) for row in _A)   # (7, 7), zero-padded.
# Fifth-order weights minus Dormand & Prince's embedded fourth-order weights (b - b*),
# stages 1..7; Shampine's embedded solution gives exactly 2/3 of these differences.
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
EMBEDDED_ERROR_SCALES = {"shampine": 2 / 3, "dormand_prince": 1.0}


class AdaptiveStats(NamedTuple):
  nfe: jax.Array        # field evaluations (int32)
  accepted: jax.Array   # accepted steps
  rejected: jax.Array   # rejected steps


def _rms(x):
  return jnp.sqrt(jnp.mean(jnp.square(x)))


def _dopri5_step(f, x, t, h, k1, error_scale=1.0):
  """One trial step: returns (x_new, error estimate, k7 = f(x_new, t + h)).

  The six new stages run in a loop with one field evaluation (the field is compiled once):
  stage i evaluates f at x + h sum_j A[i, j] k_j with the stages k so far stored in a
  (7, ...) buffer (zeros where not yet computed, where A is zero too)."""
  a = jnp.asarray(_A_MATRIX, x.dtype)           # (7, 7)
  c = jnp.asarray(_C, jnp.float32)              # (7,)
  ks = jnp.zeros((7,) + x.shape, x.dtype).at[0].set(k1)

  def stage(i, carry):
    ks, _ = carry
    y = x + h * jnp.tensordot(a[i], ks, axes=1)
    return ks.at[i].set(f(y, t + c[i] * h)), y

  ks, x_new = jax.lax.fori_loop(1, 7, stage, (ks, x))
  err = (error_scale * h) * jnp.tensordot(jnp.asarray(_E, x.dtype), ks, axes=1)
  return x_new, err, ks[6]


def initial_step_size(f, x, t, f0, direction, rtol, atol, span):
  """Hairer I, II.4 ("starting step size"), one extra field evaluation."""
  scale = atol + rtol * jnp.abs(x)
  d0, d1 = _rms(x / scale), _rms(f0 / scale)
  h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-30))
  h0 = jnp.minimum(h0, span)
  f1 = f(x + direction * h0 * f0, t + direction * h0)
  d2 = _rms((f1 - f0) / scale) / h0
  h1 = jnp.where(jnp.maximum(d1, d2) <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                 (0.01 / jnp.maximum(jnp.maximum(d1, d2), 1e-30)) ** (1 / 5))
  return jnp.minimum(jnp.minimum(100 * h0, h1), span)


def dopri5(f, x0, t0, t1, *, rtol=1e-5, atol=1e-5, max_steps=4096, h0=None,
           safety=0.9, min_factor=0.2, max_factor=10.0, beta1=1 / 5, beta2=0.0,
           embedded="shampine"):
  """Integrates dx/dt = f(x, t) from t0 to t1 (either order) with Dormand–Prince 5(4).

  Args:
    f: field f(x, t) -> array shaped like x; t a float32 scalar.
    x0: (B, ...) state at t0.
    t0, t1: scalar start and end times.
    rtol, atol: relative and absolute tolerances of the local error.
    max_steps: bound on attempted steps (the loop stops there; check `stats`).
    h0: initial |step|; chosen automatically when None.
    beta1, beta2: controller exponents, h_new = h safety err^-beta1 err_prev^beta2; the
      default (1/5, 0) is the integral controller, (0.7/5, 0.4/5) the PI controller.
    embedded: the embedded 4th-order solution of the error estimate, "shampine" (as
      diffrax and torchdiffeq) or "dormand_prince" (as Hairer's DOPRI5 code).

  Returns:
    (x at t1, AdaptiveStats).
  """
  if embedded not in EMBEDDED_ERROR_SCALES:
    raise ValueError(f"Unknown embedded method {embedded!r}; valid: "
                     f"{sorted(EMBEDDED_ERROR_SCALES)}.")
  error_scale = EMBEDDED_ERROR_SCALES[embedded]
  t0, t1 = jnp.asarray(t0, jnp.float32), jnp.asarray(t1, jnp.float32)
  direction = jnp.where(t1 >= t0, 1.0, -1.0)
  span = jnp.abs(t1 - t0)
  k1 = f(x0, t0)
  if h0 is None:
    h = initial_step_size(f, x0, t0, k1, direction, rtol, atol, span)
    nfe = jnp.asarray(2, jnp.int32)
  else:
    h = jnp.minimum(jnp.asarray(h0, jnp.float32), span)
    nfe = jnp.asarray(1, jnp.int32)

  def cond(state):
    t, _, _, _, _, accepted, rejected, _ = state
    return (direction * (t1 - t) > 0) & (accepted + rejected < max_steps)

  def body(state):
    t, x, k1, h, err_prev, accepted, rejected, nfe = state
    remaining = jnp.abs(t1 - t)
    last = h >= remaining
    h_step = jnp.minimum(h, remaining)
    x_new, err, k7 = _dopri5_step(f, x, t, direction * h_step, k1, error_scale)
    scale = atol + rtol * jnp.maximum(jnp.abs(x), jnp.abs(x_new))
    err_norm = jnp.maximum(_rms(err / scale), 1e-10)
    accept = err_norm <= 1.0
    grow = safety * err_norm ** (-beta1) * err_prev ** beta2
    shrink = safety * err_norm ** (-1 / 5)
    factor = jnp.where(accept, jnp.clip(grow, 1.0, max_factor),
                       jnp.clip(shrink, min_factor, safety))
    t_new = jnp.where(last, t1, t + direction * h_step)
    return (jnp.where(accept, t_new, t),
            jnp.where(accept, x_new, x),
            jnp.where(accept, k7, k1),
            h_step * factor,
            jnp.where(accept, err_norm, err_prev),
            accepted + accept.astype(jnp.int32),
            rejected + (~accept).astype(jnp.int32),
            nfe + 6)

  state = (t0, x0, k1, h, jnp.asarray(1.0, jnp.float32), jnp.asarray(0, jnp.int32),
           jnp.asarray(0, jnp.int32), nfe)
  _, x, _, _, _, accepted, rejected, nfe = jax.lax.while_loop(cond, body, state)
  return x, AdaptiveStats(nfe, accepted, rejected)


def dopri5_stepper(rtol=1e-5, atol=1e-5, max_steps=4096, **options):
  """Adaptive Dormand–Prince 5(4) as a stepper: each grid interval [t, t_next] is one
  adaptive solve (`dopri5`), so a grid of two times is a single solve over [0, 1] and a
  finer grid only sets where the trajectory is recorded. nfe counts the field evaluations
  of every accepted and rejected attempt (on device)."""
  def step(fields, x, t, t_next, key):
    del key
    x_next, stats = dopri5(fields.velocity, x, t, t_next, rtol=rtol, atol=atol,
                           max_steps=max_steps, **options)
    return x_next, stats.nfe
  return stateless(step)
