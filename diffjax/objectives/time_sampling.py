"""Distributions over training times t in [0, 1], chosen by name."""
import jax

from diffjax.registry import Registry

TIME_SAMPLERS = Registry("time sampler")


@TIME_SAMPLERS.register("uniform")
def uniform(key, num_samples, t_min=0.0, t_max=1.0):
  """t ~ U[t_min, t_max]: (num_samples,)."""
  return jax.random.uniform(key, (num_samples,), minval=t_min, maxval=t_max)


@TIME_SAMPLERS.register("logit_normal")
def logit_normal(key, num_samples, mean=0.0, std=1.0):
  """t = sigmoid(m + s n), n ~ N(0, 1) ("Scaling Rectified Flow Transformers", eq. 19)."""
  return jax.nn.sigmoid(mean + std * jax.random.normal(key, (num_samples,)))
