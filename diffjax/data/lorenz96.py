"""Lorenz-96 forecast ensembles: a chaotic toy atmosphere with a known "weather forecast".

dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F (cyclic i = 1..N; "Predictability - a
problem partly solved", Lorenz 1996, eq. 1), integrated by RK4. A long nature run on the
attractor gives forecast dates `date_spacing` time units apart (nearly independent). At
each date the ensemble members start from the nature state plus N(0, perturbation^2 I)
and are integrated for `lead_time`; the verifying truth starts the same way (one more,
independent member: a perfectly reliable ensemble, so spread-skill 1 and a flat rank
histogram are what an emulator should reproduce). This is the setting of SEEDS
("SEEDS: Emulation of Weather Forecast Ensembles with Diffusion Models", Li et al. 2024)
in miniature: a few seed members of a date condition the generation of more.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError


def lorenz96_tendency(x, forcing=8.0):
  """dx/dt for states x (..., N)."""
  return (jnp.roll(x, -1, -1) - jnp.roll(x, 2, -1)) * jnp.roll(x, 1, -1) - x + forcing


def rk4_integrate(x, num_steps, dt=0.05, forcing=8.0):
  """x (..., N) after num_steps RK4 steps of size dt."""
  def step(x, _):
    f = lambda y: lorenz96_tendency(y, forcing)
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None
  return jax.lax.scan(step, x, None, length=num_steps)[0]


class Ensembles(NamedTuple):
  """members (D, M, N) and truth (D, N) at the lead time of D forecast dates; analyses
  (D, N) the nature states they start from."""
  members: np.ndarray
  truth: np.ndarray
  analyses: np.ndarray


def lorenz96_ensembles(seed, num_dates, num_members, dim=40, forcing=8.0, lead_time=1.0,
                       perturbation=0.2, date_spacing=5.0, dt=0.05, spin_up=20.0):
  """`Ensembles` of `num_dates` forecasts of `num_members` members (plus the truth) of the
  N = dim variable Lorenz-96 system, all float32."""
  for name, value, low in (("num_dates", num_dates, 1), ("num_members", num_members, 1),
                           ("dim", dim, 4)):
    if not (isinstance(value, int) and value >= low):
      raise ConfigError(f"Lorenz-96 {name} must be an integer >= {low}; got {value!r}.")
  for name, value in (("lead_time", lead_time), ("perturbation", perturbation),
                      ("date_spacing", date_spacing), ("dt", dt)):
    if not value > 0:
      raise ConfigError(f"Lorenz-96 {name} must be > 0; got {value}.")
  key = jax.random.PRNGKey(seed)
  k_start, k_perturb = jax.random.split(key)
  x = forcing + 0.01 * jax.random.normal(k_start, (dim,))
  x = rk4_integrate(x, int(round(spin_up / dt)), dt, forcing)
  spacing = int(round(date_spacing / dt))

  def next_date(x, _):
    x = rk4_integrate(x, spacing, dt, forcing)
    return x, x
  _, analyses = jax.lax.scan(next_date, x, None, length=num_dates)
  starts = analyses[:, None] + perturbation * jax.random.normal(
      k_perturb, (num_dates, num_members + 1, dim))
  run = jax.jit(lambda s: rk4_integrate(s, int(round(lead_time / dt)), dt, forcing))
  ends = np.asarray(run(starts), np.float32)
  return Ensembles(ends[:, 1:], ends[:, 0], np.asarray(analyses, np.float32))
