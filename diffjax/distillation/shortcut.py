"""Shortcut models ("One Step Diffusion via Shortcut Models", Frans, Hafner, Levine &
Abbeel): a network s(x_t, t, d) conditioned on the step size d, trained by flow matching at
d = 0 and by self-consistency at d > 0.

The paper's time is diffjax's (x_t = (1 - t) x0 + t x1, noise x0 at t = 0, data at t = 1),
so no map is needed: a jump is x_{t+d} = x_t + d s(x_t, t, d) (eq. 4), s being the average
velocity over [t, t + d] (`diffjax.distillation.flow_maps`, h = d). The loss (eq. 5) is
    E |s(x_t, t, 0) - v|^2 + E |s(x_t, t, 2d) - sg(s_target)|^2,
    s_target = (s(x_t, t, d) + s(x'_{t+d}, t + d, d)) / 2,  x'_{t+d} = x_t + d s(x_t, t, d),
v the regression velocity (the pair's conditional velocity x1 - x0, or a teacher's). A
share `self_consistency_share` of each batch (about a quarter in the paper) carries the
self-consistency term: its step 2d = 2^-k is drawn uniformly over k in {0, ..., log2(M) -
1} (M = `max_steps`, 128 in the paper) and t uniformly on the multiples of 2d below 1, so
t + 2d <= 1. At the smallest step (d = 1/M) the two half steps query d = 0 (the flow-
matching velocity, as the paper does: there is no smaller step to bootstrap from);
`flow_matching_anchor=False` queries d = 1/M instead (then the exact flow map makes the
loss vanish exactly, which the tests use). The target is the stop-gradient of the same
parameters. M-step sampling jumps with d = 1/M (the "flow_map" sampler on a uniform grid).
"""
import math

import jax
import jax.numpy as jnp

from diffjax.core import time_column
from diffjax.distillation.flow_maps import VELOCITIES, flow_map_method
from diffjax.distillation.methods import (DISTILLATION_METHODS, DistillationMethod,
                                          check_options, method_options)
from diffjax.errors import ConfigError
from diffjax.train.validation import Key

DEFAULTS = dict(velocity="conditional", self_consistency_share=0.25, max_steps=128,
                flow_matching_anchor=True)
KEYS = (
    Key("method.velocity", "name", names=lambda: VELOCITIES),
    Key("method.self_consistency_share", "float", 0.0, 1.0,
        meaning="share of each batch with the self-consistency target"),
    Key("method.max_steps", "int", 2, meaning="the finest step 1/max_steps, a power of 2"),
    Key("method.flow_matching_anchor", "bool"),
)


def _squared(a, b):
  return jnp.mean(jnp.square(a - b), axis=tuple(range(1, a.ndim)))


def shortcut_loss(u, params, key, x0, x1, labels, path, velocity, options):
  """The shortcut-model loss (module docstring) of u(params, x, t, s, labels) (the
  average velocity over [t, s], s = t + d) on pairs x0, x1 (B, ...); the last
  round(B x self_consistency_share) examples carry the self-consistency target. velocity
  as `diffjax.distillation.flow_maps.target_velocity`. Returns (loss, aux)."""
  batch = x1.shape[0]
  num_sc = int(round(batch * options["self_consistency_share"]))
  num_fm = batch - num_sc
  max_steps = options["max_steps"]
  levels = int(math.log2(max_steps))
  k_time, k_level, k_grid = jax.random.split(key, 3)
  s_fn = lambda x, t, d, lab: u(params, x, t, t + d, lab)
  take = lambda a, rows: None if a is None else a[rows]
  fm, sc = slice(0, num_fm), slice(num_fm, batch)

  # Flow matching at d = 0.
  t_fm = jax.random.uniform(k_time, (num_fm,))
  x_fm = path.interpolate(t_fm, x0[fm], x1[fm])
  v = velocity(x_fm, t_fm, x0[fm], x1[fm], take(labels, fm))
  fm_error = _squared(s_fn(x_fm, t_fm, jnp.zeros_like(t_fm), take(labels, fm)), v)

  # Self-consistency: one step of 2d against two of d.
  k = jax.random.randint(k_level, (num_sc,), 0, levels)
  double = 2.0 ** (-k.astype(jnp.float32))
  half = double / 2
  t_sc = jax.random.randint(k_grid, (num_sc,), 0, 2 ** levels) % (2 ** k) * double
  query = half
  if options["flow_matching_anchor"]:
    query = jnp.where(half <= 1 / max_steps, 0.0, half)
  lab = take(labels, sc)
  x_sc = path.interpolate(t_sc, x0[sc], x1[sc])
  first = s_fn(x_sc, t_sc, query, lab)
  x_mid = x_sc + time_column(half, x_sc) * first
  second = s_fn(x_mid, t_sc + half, query, lab)
  target = jax.lax.stop_gradient((first + second) / 2)
  sc_error = _squared(s_fn(x_sc, t_sc, double, lab), target)

  loss = (jnp.sum(fm_error) + jnp.sum(sc_error)) / batch
  return loss, {"flow_matching": jnp.mean(fm_error) if num_fm else 0.0,
                "self_consistency": jnp.mean(sc_error) if num_sc else 0.0}


def _check(config):
  check_options(config, KEYS, tuple(DEFAULTS) + ("name",))
  max_steps = method_options(config, DEFAULTS)["max_steps"]
  if max_steps & (max_steps - 1):
    raise ConfigError(f"method.max_steps={max_steps} must be a power of 2 (the step sizes "
                      "are 1, 1/2, ..., 1/max_steps).")


DISTILLATION_METHODS.register("shortcut", DistillationMethod(
    "shortcut", flow_map_method(shortcut_loss, DEFAULTS), _check, needs_teacher=False, sampler="flow_map",
    num_steps=1, paper="One Step Diffusion via Shortcut Models"))
