"""Exact log-likelihoods through the probability-flow ODE, compiled end to end.

For any path whose marginals rho_t are transported by a velocity v (a Gaussian path's
probability-flow ODE, an interpolant's velocity, a flow-matching network),
    d/dt log rho_t(x_t) = -div v(x_t, t)
("Neural Ordinary Differential Equations", Chen et al., Thm. 1; "Score-Based Generative
Modeling through SDEs", Song et al., eq. 39), so integrating x from the data (t = 1) back
to the source (t = 0) gives
    log rho_1(x) = log rho_0(x_0) - int_0^1 div v(x_t, t) dt.
The divergence is exact (D Jacobian-vector products, for small D) or Hutchinson's
estimate eps^T (dv/dx) eps with one Rademacher or Gaussian probe held fixed along the
trajectory ("FFJORD", Grathwohl et al., eq. 7). The source log-density is an argument,
so non-Gaussian sources (interpolants, bridges) use the same function. Everything is a
jax function: wrap it in `jax.jit` (see `make_log_likelihood`).
"""
import math

import jax
import jax.numpy as jnp

from diffjax.core import Fields
from diffjax.registry import Registry
from diffjax.solvers.integrate import integrate
from diffjax.solvers.ode import runge_kutta
from diffjax.solvers.sampler import SAMPLERS, sampler_for

DIVERGENCES = Registry("divergence estimator")
PROBES = Registry("Hutchinson probe")
PROBES.register("rademacher", lambda key, shape: jax.random.rademacher(key, shape, jnp.float32))
PROBES.register("gaussian", lambda key, shape: jax.random.normal(key, shape, jnp.float32))


@DIVERGENCES.register("exact")
def exact_divergence(velocity, x, t, probe=None):
  """div v at x (B, D): the trace of the per-example Jacobian, one jvp per dimension."""
  del probe
  d = x.shape[1]
  basis = jnp.eye(d, dtype=x.dtype)

  def diagonal(e):
    tangent = jnp.broadcast_to(e[None], x.shape)
    return jnp.sum(jax.jvp(lambda y: velocity(y, t), (x,), (tangent,))[1] * tangent, -1)

  v = velocity(x, t)
  return v, jnp.sum(jax.vmap(diagonal)(basis), 0)


@DIVERGENCES.register("hutchinson")
def hutchinson_divergence(velocity, x, t, probe):
  """eps^T (dv/dx) eps per example, x and probe (B, D): unbiased for E[eps eps^T] = I."""
  v, jv = jax.jvp(lambda y: velocity(y, t), (x,), (probe,))
  return v, jnp.sum(jv * probe, -1)


def log_likelihood(velocity, x, *, source_log_prob, key=None, divergence="exact",
                   probe="rademacher", solver="heun", num_steps=100, rtol=1e-5, atol=1e-5,
                   max_steps=4096):
  """log rho_1(x) under the flow of `velocity` from the source density `source_log_prob`.

  Args:
    velocity: field v(x, t) on (B, ...) states, t a scalar.
    x: (B, ...) data points at t = 1.
    source_log_prob: (B, ...) -> (B,) log-density of the source rho_0 (e.g. a Gaussian
      path's `source_log_prob`).
    key: PRNG key for the Hutchinson probe (unused for the exact divergence).
    divergence: "exact" or "hutchinson"; probe: "rademacher" or "gaussian".
    solver: a fixed-step `ODE_SOLVERS` name on a uniform grid of `num_steps`, or "dopri5"
      (adaptive, with rtol/atol).

  Returns:
    (log_prob (B,), x_source (B, ...), nfe) where nfe counts augmented-field calls.
  """
  div_fn = DIVERGENCES.get(divergence)
  batch, shape = x.shape[0], x.shape[1:]
  d = math.prod(shape)
  flat_v = lambda y, t: velocity(y.reshape((batch,) + shape), t).reshape(batch, d)
  eps = None
  if divergence == "hutchinson":
    if key is None:
      raise ValueError("The Hutchinson divergence needs a PRNG key.")
    eps = PROBES.get(probe)(key, (batch, d))

  def augmented(state, t):
    v, div = div_fn(flat_v, state[:, :d], t, eps)
    return jnp.concatenate([v, div[:, None]], axis=1)

  state = jnp.concatenate([x.reshape(batch, d), jnp.zeros((batch, 1), x.dtype)], axis=1)
  if sampler_for(solver).adaptive:   # One solve; the sampler picks its own steps.
    stepper = SAMPLERS.get(solver).build(None, rtol=rtol, atol=atol, max_steps=max_steps)
    ts = jnp.asarray([1.0, 0.0])
  else:
    stepper = runge_kutta(solver)
    ts = jnp.linspace(1.0, 0.0, num_steps + 1)
  out, _, nfe, _ = integrate(stepper, Fields.of(velocity=augmented), state, ts)
  x_source = out[:, :d].reshape(x.shape)
  # out[:, d] = int_1^0 div dt = -int_0^1 div dt.
  return source_log_prob(x_source) + out[:, d], x_source, nfe


def standard_normal_log_prob(x):
  """log N(x; 0, I) per example: (B, ...) -> (B,)."""
  flat = x.reshape(x.shape[0], -1)
  return -0.5 * jnp.sum(flat ** 2, -1) - 0.5 * flat.shape[1] * jnp.log(2 * jnp.pi)


def make_log_likelihood(velocity, source_log_prob, **options):
  """A jitted (x, key) -> (log_prob, x_source, nfe) with the options of `log_likelihood`."""
  @jax.jit
  def fn(x, key=None):
    return log_likelihood(velocity, x, source_log_prob=source_log_prob, key=key, **options)
  return fn


def bits_per_dim(log_prob_fn, key, data, *, num_bins=256, scale=2.0, shift=-1.0):
  """Bits per dimension of integer data with uniform dequantisation.

  y = (k + u) / num_bins with u ~ U[0, 1)^D maps integers k in {0, ..., num_bins - 1} to
  [0, 1), and the model sees x = scale y + shift. Since log P(k) >= E_u log p_y(y) -
  D log num_bins and log p_y = log p_x + D log scale ("A note on the evaluation of
  generative models", Theis et al., eq. 5; Song et al., Sec. 4.3 / Table 2),
      bpd = -(log p_x(x) + D log scale - D log num_bins) / (D log 2).

  Args:
    log_prob_fn: (B, ...) -> (B,) model log-density in x space (e.g. `log_likelihood`).
    key: PRNG key for the dequantisation noise.
    data: (B, ...) integers.

  Returns:
    (B,) bits/dim of each example (one dequantisation sample; average over several keys
    for a tighter estimate).
  """
  u = jax.random.uniform(key, data.shape)
  x = scale * (data.astype(jnp.float32) + u) / num_bins + shift
  d = math.prod(data.shape[1:])
  log_px = log_prob_fn(x)
  return -(log_px + d * math.log(scale) - d * math.log(num_bins)) / (d * math.log(2.0))


__all__ = ["log_likelihood", "make_log_likelihood", "bits_per_dim", "DIVERGENCES",
           "PROBES", "exact_divergence", "hutchinson_divergence"]
