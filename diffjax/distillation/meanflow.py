"""MeanFlow ("Mean Flows for One-step Generative Modeling", Geng, Deng, Bai, Kolter & He):
a network of the average velocity, trained through the MeanFlow identity with one JVP.

The paper's convention puts the data at t = 0 and the noise at t = 1 (z_t = (1 - t) x +
t eps, v = eps - x) and defines, for r < t, u(z_t, r, t) = 1/(t - r) int_r^t v(z_tau, tau)
dtau (eq. 3), which satisfies (eq. 6)
    u(z_t, r, t) = v(z_t, t) - (t - r) d/dt u(z_t, r, t),  d/dt u = v . d_z u + d_t u.
The identity follows from differentiating (t - r) u = int_r^t v in t along the trajectory
and holds in any time parametrisation, so in diffjax time (noise at t = 0) with the start
t and the end s of a jump (generation: s > t; the paper's r is 1 - s and its t is 1 - t):
    u(x_t, t, s) = v(x_t, t) - (t - s) (v . d_x u + d_t u),
the total derivative being one `jax.jvp` of u(x, t, s) with tangents (v, 1, 0). The loss
(eq. 9) regresses u_theta(x_t, t, s) on the stop-gradient of that right-hand side,
    L = sg(w) |u_theta - sg(v - (t - s)(v . d_x u_theta + d_t u_theta))|^2,
with the adaptive weight w = 1 / (|Delta|^2 + c)^p (Sec. 4.3; p = 1, c = 1e-3; p = 0 is
plain L2). s = t (the paper's r = t) recovers flow matching. Times: the paper draws (t, r)
from a logit-normal (P_mean -0.4, P_std 1.0) pair sorted so that r <= t, and sets r = t for
a share 1 - ratio of the batch (ratio 0.25, Table 1a); in diffjax time t = 1 - t_paper,
s = 1 - r_paper. One step: x1 = x0 + u(x0, 0, 1) (the "flow_map" sampler).
"""
import jax
import jax.numpy as jnp

from diffjax.core import time_column
from diffjax.distillation.flow_maps import VELOCITIES, flow_map_method
from diffjax.distillation.methods import (DISTILLATION_METHODS, DistillationMethod,
                                          check_options)
from diffjax.train.validation import Key

TIME_SAMPLERS = ("logit_normal", "uniform")
DEFAULTS = dict(velocity="conditional", time_sampler="logit_normal", p_mean=-0.4,
                p_std=1.0, ratio=0.25, adaptive_p=1.0, adaptive_c=1e-3)
KEYS = (
    Key("method.velocity", "name", names=lambda: VELOCITIES),
    Key("method.time_sampler", "name", names=lambda: TIME_SAMPLERS),
    Key("method.p_mean", "float"),
    Key("method.p_std", "float", 0.0, open_low=True),
    Key("method.ratio", "float", 0.0, 1.0, meaning="share of pairs with s != t"),
    Key("method.adaptive_p", "float", 0.0, meaning="0: plain L2"),
    Key("method.adaptive_c", "float", 0.0, open_low=True),
)


def sample_times(key, batch, options):
  """(t, s), each (batch,), in diffjax time with t <= s: the paper's (r, t) pair of
  logit-normal (or uniform) draws sorted, r = t for a share 1 - ratio, mapped by
  t_diffjax = 1 - t_paper (module docstring)."""
  k_draw, k_equal = jax.random.split(key)
  if options["time_sampler"] == "uniform":
    draws = jax.random.uniform(k_draw, (2, batch))
  else:
    normal = jax.random.normal(k_draw, (2, batch))
    draws = jax.nn.sigmoid(options["p_mean"] + options["p_std"] * normal)
  t_paper, r_paper = jnp.max(draws, 0), jnp.min(draws, 0)
  equal = jax.random.uniform(k_equal, (batch,)) >= options["ratio"]
  r_paper = jnp.where(equal, t_paper, r_paper)
  return 1 - t_paper, 1 - r_paper


def meanflow_loss(u, params, key, x0, x1, labels, path, velocity, options):
  """The MeanFlow loss (module docstring) of u(params, x, t, s, labels) on pairs
  x0, x1 (B, ...): velocity(x_t, t, x0, x1, labels) is the regression velocity
  (`diffjax.distillation.flow_maps.target_velocity`). Returns (loss, aux)."""
  t, s = sample_times(key, x1.shape[0], options)
  x_t = path.interpolate(t, x0, x1)
  v = velocity(x_t, t, x0, x1, labels)
  fn = lambda x, t, s: u(params, x, t, s, labels)
  out, total = jax.jvp(fn, (x_t, t, s), (v, jnp.ones_like(t), jnp.zeros_like(s)))
  target = jax.lax.stop_gradient(v - time_column(t - s, v) * total)
  squared = jnp.sum(jnp.square(out - target), axis=tuple(range(1, out.ndim)))
  weight = jax.lax.stop_gradient(
      1 / (squared + options["adaptive_c"]) ** options["adaptive_p"])
  return jnp.mean(weight * squared), {"mse": jnp.mean(squared)}


DISTILLATION_METHODS.register("meanflow", DistillationMethod(
    "meanflow", flow_map_method(meanflow_loss, DEFAULTS),
    lambda config: check_options(config, KEYS, tuple(DEFAULTS) + ("name",)),
    needs_teacher=False, sampler="flow_map", num_steps=1,
    paper="Mean Flows for One-step Generative Modeling"))
