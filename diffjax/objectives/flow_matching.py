"""Conditional flow matching: regress the velocity of an interpolant path.

Loss ("Flow Matching for Generative Modeling", Lipman et al., eq. 9; "Improving and
generalizing flow-based generative models with minibatch optimal transport", Tong et al.,
eq. 14):  E_{t, (x0, x1), z} | v_theta(x_t, t) - d/dt x_t |^2,
averaged over data dimensions. Its minimiser is the marginal velocity of the path.
"""
import jax
import jax.numpy as jnp

from diffjax.fields import velocity_fields
from diffjax.objectives.base import OBJECTIVES, Objective
from diffjax.objectives.time_sampling import TIME_SAMPLERS


@OBJECTIVES.register("flow_matching")
def flow_matching(path, time_sampler="uniform", **time_sampler_options) -> Objective:
  """Velocity regression on `path` with training times drawn by `time_sampler`."""
  sample_times = TIME_SAMPLERS.get(time_sampler)

  def loss(apply_fn, params, key, x0, x1, cond=None):
    k_t, k_z = jax.random.split(key)
    t = sample_times(k_t, x1.shape[0], **time_sampler_options)
    z = jax.random.normal(k_z, x1.shape, x1.dtype)
    xt = path.interpolate(t, x0, x1, z)
    target = path.conditional_velocity(t, x0, x1, z)
    residual = apply_fn(params, xt, t, cond) - target
    per_example = jnp.mean(residual.reshape(residual.shape[0], -1) ** 2, axis=-1)
    return jnp.mean(per_example), {}

  def fields(apply_fn, params, cond=None):
    return velocity_fields(lambda x, t: apply_fn(params, x, t, cond), path)

  return Objective(loss, fields)
