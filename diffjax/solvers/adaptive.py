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


# The points of the field evaluations of a solve, one row each: y = x + h (row . ks) at time
# t + c h, with h the signed step, its value stored in ks[slot]. Row 0 is the start k1 =
# f(x0, t0); row 1 the probe of the initial step size, f(x0 + h0 k1, t0 + h0) (Hairer I,
# II.4); rows 2..7 the six new stages of an attempted step (its first stage is k1, the
# last stage of the step before).
_POINTS = ((0.0,) * 7, (1.0,) + (0.0,) * 6) + _A_MATRIX[1:]   # (8, 7)
_POINT_TIMES = (0.0, 1.0) + _C[1:]                            # (8,)
_SLOTS = (0, 1, 1, 2, 3, 4, 5, 6)
_START, _PROBE, _FIRST_STAGE, _LAST_STAGE = 0, 1, 2, 7


class AdaptiveStats(NamedTuple):
  nfe: jax.Array        # field evaluations (int32)
  accepted: jax.Array   # accepted steps
  rejected: jax.Array   # rejected steps


class _Solve(NamedTuple):
  """A solve between two field evaluations: the current time and state, |h| of the
  attempt in progress (of the probe at the start), the stages ks (7, B, ...) with ks[0] =
  f(x, t), the row of `_POINTS` evaluated next, the last accepted error and the counts."""
  t: jax.Array
  x: jax.Array
  h: jax.Array
  ks: jax.Array
  point: jax.Array
  err_prev: jax.Array
  accepted: jax.Array
  rejected: jax.Array
  nfe: jax.Array


def _rms(x):
  return jnp.sqrt(jnp.mean(jnp.square(x)))


def _first_guess(x, f0, rtol, atol, span):
  """h0 of Hairer I, II.4 from the start's field value f0 (no evaluation)."""
  scale = atol + rtol * jnp.abs(x)
  d0, d1 = _rms(x / scale), _rms(f0 / scale)
  h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-30))
  return jnp.minimum(h0, span)


def _initial_step(x, f0, f1, h0, rtol, atol, span):
  """The starting step of Hairer I, II.4 from f0 and the probe f1 = f(x + h0 f0)."""
  scale = atol + rtol * jnp.abs(x)
  d1 = _rms(f0 / scale)
  d2 = _rms((f1 - f0) / scale) / h0
  h1 = jnp.where(jnp.maximum(d1, d2) <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                 (0.01 / jnp.maximum(jnp.maximum(d1, d2), 1e-30)) ** (1 / 5))
  return jnp.minimum(jnp.minimum(100 * h0, h1), span)


def dopri5(f, x0, t0, t1, *, rtol=1e-5, atol=1e-5, max_steps=4096, h0=None,
           safety=0.9, min_factor=0.2, max_factor=10.0, beta1=1 / 5, beta2=0.0,
           embedded="shampine"):
  """Integrates dx/dt = f(x, t) from t0 to t1 (either order) with Dormand–Prince 5(4).

  One `lax.while_loop` makes one field evaluation per iteration, at the next row of
  `_POINTS` (the start, the initial-step probe, then the stages of each attempted step),
  and settles the attempt after its last stage: the field is traced and compiled once,
  and the compiled loop runs at the speed of a loop of bare evaluations.

  Args:
    f: field f(x, t) -> array shaped like x; t a float32 scalar.
    x0: (B, ...) state at t0.
    t0, t1: scalar start and end times.
    rtol, atol: relative and absolute tolerances of the local error.
    max_steps: bound on attempted steps (the loop stops there; check `stats`).
    h0: initial |step|; chosen automatically when None (one more field evaluation).
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
  points = jnp.asarray(_POINTS, x0.dtype)
  point_times = jnp.asarray(_POINT_TIMES, jnp.float32)
  slots = jnp.asarray(_SLOTS, jnp.int32)
  weights = jnp.asarray(_E, x0.dtype)
  fresh = lambda k1: jnp.zeros((7,) + x0.shape, x0.dtype).at[0].set(k1)
  row = lambda index: jnp.asarray(index, jnp.int32)

  def started(s, y):
    del y
    if h0 is None:
      return s._replace(h=_first_guess(s.x, s.ks[0], rtol, atol, span), point=row(_PROBE))
    return s._replace(h=jnp.minimum(jnp.asarray(h0, jnp.float32), span),
                      point=row(_FIRST_STAGE))

  def probed(s, y):
    del y
    h = _initial_step(s.x, s.ks[0], s.ks[1], s.h, rtol, atol, span)
    return s._replace(h=h, point=row(_FIRST_STAGE))

  def staged(s, y):
    del y
    return s._replace(point=s.point + 1)

  def attempted(s, y):
    """Accepts or rejects the step to y (the 5th-order solution, ks[6] = f there). The
    next attempt starts from zeroed stages: a rejected attempt's non-finite stages would
    turn into NaN through the zero entries of the rows."""
    h = direction * s.h
    err = (error_scale * h) * jnp.tensordot(weights, s.ks, axes=1)
    scale = atol + rtol * jnp.maximum(jnp.abs(s.x), jnp.abs(y))
    err_norm = jnp.maximum(_rms(err / scale), 1e-10)
    accept = err_norm <= 1.0
    grow = safety * err_norm ** (-beta1) * s.err_prev ** beta2
    shrink = safety * err_norm ** (-1 / 5)
    factor = jnp.where(accept, jnp.clip(grow, 1.0, max_factor),
                       jnp.clip(shrink, min_factor, safety))
    last = s.h >= jnp.abs(t1 - s.t)
    t = jnp.where(accept, jnp.where(last, t1, s.t + h), s.t)
    return _Solve(t, jnp.where(accept, y, s.x),
                  jnp.minimum(s.h * factor, jnp.abs(t1 - t)),   # The next attempt's |h|.
                  fresh(jnp.where(accept, s.ks[6], s.ks[0])),
                  row(_FIRST_STAGE),
                  jnp.where(accept, err_norm, s.err_prev),
                  s.accepted + accept.astype(jnp.int32),
                  s.rejected + (~accept).astype(jnp.int32), s.nfe)

  def cond(s):
    return (direction * (t1 - s.t) > 0) & (s.accepted + s.rejected < max_steps)

  def body(s):
    h = direction * s.h
    y = s.x + h * jnp.tensordot(points[s.point], s.ks, axes=1)
    k = f(y, s.t + point_times[s.point] * h)
    s = s._replace(ks=s.ks.at[slots[s.point]].set(k), nfe=s.nfe + 1)
    phase = jnp.where(s.point == _LAST_STAGE, 3, jnp.minimum(s.point, 2))
    return jax.lax.switch(phase, (started, probed, staged, attempted), s, y)

  zero = jnp.zeros((), jnp.int32)
  state = _Solve(t0, x0, jnp.zeros((), jnp.float32), fresh(jnp.zeros_like(x0)),
                 row(_START), jnp.ones((), jnp.float32), zero, zero, zero)
  s = jax.lax.while_loop(cond, body, state)
  return s.x, AdaptiveStats(s.nfe, s.accepted, s.rejected)


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
