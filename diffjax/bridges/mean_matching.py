"""Mean matching: the regression of the Diffusion Schrödinger Bridge's IPF half-iterations.

"Diffusion Schrödinger Bridge with Applications to Score-Based Generative Modeling"
(De Bortoli, Thornton, Heng & Doucet, NeurIPS 2021), Alg. 1 and Prop. 3, in diffjax time.
IPF alternates two half-iterations. Each simulates trajectories with the current drift of
one direction (the reference's drift at the very first, so that half-iteration is plain
score-based modelling of the reference's time reversal) and fits the drift of the other
direction by regression on them:

  travel  y_{j+1} = y_j + h_j d(y_j, s_j) + g sqrt(h_j) z_j      (d: drift in the direction
                                                                  of travel, s_j its times)
  fit     reverse drift at (y_{j+1}, s_{j+1}) ~ (y_j - y_{j+1}) / h_j + d(y_j, s_j)
                                                - d(y_{j+1}, s_j)

which is the paper's mean-matching target B_{k+1}(X_{k+1}) ~ X_{k+1} + F_k(X_k) -
F_k(X_{k+1}) (F_k(x) = x + gamma d(x)) divided by the step. With velocity v = dX/dt (so
d = v forward and d = -v backward) and signed step h = s_{j+1} - s_j the target is
(y_j - y_{j+1}) / |h| + sign(h) (v(y_j, s_j) - v(y_{j+1}, s_j)).

The trajectories are simulated once into a device-resident `TrajectoryCache` (the paper's
cache of `cache_npar` paths, refreshed every `cache_refresh_stride` steps) and each
regression step draws a minibatch of (path, time) pairs from it. `mean_matching_stepper`
computes the targets while it simulates (two field evaluations per step), so a cache is one
`diffjax.bridges.simulate.simulate` call.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from diffjax.bridges.simulate import simulate, travel_grid
from diffjax.core import Stepper


class TrajectoryCache(NamedTuple):
  """Regression pairs from simulated paths: x (N, M, D) states, t (N,) their times,
  target (N, M, D) the mean-matching targets of the drift to fit at (x, t)."""
  x: jax.Array
  t: jax.Array
  target: jax.Array


class MeanMatchingState(NamedTuple):
  target: jax.Array   # The target at the state the last step reached.


def mean_matching_stepper(diffusion) -> Stepper:
  """Euler–Maruyama with constant diffusion g that also returns the mean-matching target of
  the reverse drift at each new state (in its state). Two field evaluations per step."""
  g = diffusion if callable(diffusion) else (lambda t: diffusion)

  def init(x0, ts):
    del ts
    return MeanMatchingState(jnp.zeros_like(x0))

  def step(fields, x, state, t, t_next, key):
    del state
    h = t_next - t
    v_start = fields.velocity(x, t)
    noise = jax.random.normal(key, x.shape, x.dtype)
    x_next = x + h * v_start + g(t) * jnp.sqrt(jnp.abs(h)) * noise
    v_end = fields.velocity(x_next, t)
    target = (x - x_next) / jnp.abs(h) + jnp.sign(h) * (v_start - v_end)
    return x_next, MeanMatchingState(target), 2

  return Stepper(init, step, ("velocity",))


def simulate_cache(drift: Callable, x_start, ts, key, diffusion, direction
                   ) -> TrajectoryCache:
  """Simulates paths from x_start (M, D) and returns the regression pairs for the drift of
  the opposite direction.

  Args:
    drift: the drift in the direction of travel, drift(x, t) -> (M, D): the forward drift
      f (or the reference's drift) when direction = "forward", the backward drift b when
      "backward".
    x_start: (M, D) samples of the first marginal (forward) or the last one (backward).
    ts: (N + 1,) increasing grid on [0, 1].
    key: PRNG key.
    diffusion: g, the constant diffusion coefficient.
    direction: "forward" (fits the backward drift) or "backward" (fits the forward drift).
  """
  solution = simulate(drift, x_start, ts, key, diffusion, direction,
                      stepper=mean_matching_stepper, record=lambda x, state: state.target)
  return TrajectoryCache(solution.trajectory[1:], travel_grid(ts, direction)[1:],
                         solution.records)


def cache_batch(cache: TrajectoryCache, key, batch_size):
  """A minibatch of (x (B, D), t (B,), target (B, D)) drawn uniformly over paths and
  times of the cache."""
  k_time, k_path = jax.random.split(key)
  num_times, num_paths = cache.x.shape[:2]
  j = jax.random.randint(k_time, (batch_size,), 0, num_times)
  i = jax.random.randint(k_path, (batch_size,), 0, num_paths)
  return cache.x[j, i], cache.t[j], cache.target[j, i]


def mean_matching_loss(drift_fn: Callable, cache: TrajectoryCache, key, batch_size):
  """Mean squared error of drift_fn(x, t) (x (B, D), t (B,)) against the cache's targets
  on a minibatch; returns (loss, aux)."""
  x, t, target = cache_batch(cache, key, batch_size)
  error = jnp.mean((drift_fn(x, t) - target) ** 2)
  return error, {"mean_matching_mse": error}
