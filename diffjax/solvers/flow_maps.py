"""Few-step samplers of learned flow maps: multistep consistency sampling and flow-map jumps.

consistency  "Consistency Models" (Song, Dhariwal, Chen & Sutskever, Algorithm 1). The
             fields' "data" prediction is the consistency function f(x_t, t): the end of
             the probability-flow ODE trajectory through x_t (not the posterior mean
             E[x1 | x_t] of a denoiser). Each step evaluates f at the step's start and noises
             it afresh to the next grid time:
                 x_{t'} = alpha(t') f + sqrt(sigma(t')^2 - alpha(t')^2 sigma_min^2) eps,
             eps ~ N(0, I), on a Gaussian path x_t = alpha(t) x1 + sigma(t) eps. In the
             paper's noise levels (decreasing along sampling, tau = sigma / alpha) this is
             x_hat = x + sqrt(tau_n^2 - sigma_min^2) z, x = f(x_hat, tau_n); diffjax's
             increasing t visits the same decreasing levels. sigma_min is the level f maps
             to (the consistency model's boundary, 0.002 in the paper): at the grid's end
             (tau <= sigma_min) no noise is added and the step returns f itself.
flow_map     x_{t'} = x_t + (t' - t) u(x_t, t, t'): the jump of a flow map given by its
             average velocity u over [t, t'] (MeanFlow's u(z, r, t), "Mean Flows for One-step
             Generative Modeling", eq. 3; a shortcut model's s(x_t, t, d) with d = t' - t,
             "One Step Diffusion via Shortcut Models", eq. 4; both written in diffjax time).
             u is the sampler's option average_velocity(x, t, t_next) -> (B, ...), and
             the fields are then not read; without it u is the fields' velocity at the
             step's start (u(x, t, t) = v(x, t): the Euler step). With the exact average
             velocity of the probability-flow ODE the jump is exact on any grid.

Both are registered in `diffjax.solvers.SAMPLERS` ("consistency", "flow_map"); a flow-map
student of `diffjax.distillation` generates through them.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian, stateless
from diffjax.solvers.sampler import SAMPLERS, Sampler


def consistency_sampler(path, *, sigma_min=0.0) -> Stepper:
  """Multistep consistency sampling on the Gaussian `path` (module docstring).

  Args:
    path: the student's Gaussian path.
    sigma_min: the noise-to-signal level sigma / alpha of the consistency function's
      output (its boundary), >= 0.

  Returns:
    A stochastic `Stepper` reading the "data" prediction; one evaluation per step.
  """
  view = require_gaussian(path, "Multistep consistency sampling")
  if not sigma_min >= 0:
    raise ValueError(f"sigma_min must be >= 0; got {sigma_min}.")

  def step(fields, x, t, t_next, key):
    if key is None:
      raise ValueError("Multistep consistency sampling is stochastic: pass a PRNG key.")
    data = fields.data(x, t)
    alpha, sigma = view.alpha(t_next), view.sigma(t_next)
    level = jnp.sqrt(jnp.maximum(sigma ** 2 - (alpha * sigma_min) ** 2, 0.0))
    noise = jax.random.normal(key, x.shape, x.dtype)
    return alpha * data + level * noise, 1

  return stateless(step, needs=("data",))


def flow_map_sampler(path=None, *, average_velocity=None) -> Stepper:
  """Jumps x + (t' - t) u(x, t, t') of a flow map (module docstring).

  Args:
    path: unused (a flow map needs no path coefficients).
    average_velocity: u(x (B, ...), t (), t_next ()) -> (B, ...), the flow map's average
      velocity over [t, t_next] (a student's, `diffjax.distillation`); None: the fields'
      velocity at t (Euler).
  """
  del path
  if average_velocity is not None and not callable(average_velocity):
    raise ValueError(f"average_velocity must be a function u(x, t, t_next); got "
                     f"{average_velocity!r}.")

  def step(fields, x, t, t_next, key):
    del key
    u = (fields.velocity(x, t) if average_velocity is None
         else average_velocity(x, t, t_next))
    return x + (t_next - t) * u, 1

  return stateless(step, needs=_flow_map_needs(average_velocity))


def _flow_map_needs(average_velocity=None, **_):
  return ("velocity",) if average_velocity is None else ()


SAMPLERS.register("consistency", Sampler(
    consistency_sampler, evaluations=1, order=None, stochastic=True, needs=("data",),
    evaluates_once_at_start=True, default_grid="uniform", default_steps=1))
SAMPLERS.register("flow_map", Sampler(
    flow_map_sampler, evaluations=1, order=None, stochastic=False, needs=_flow_map_needs,
    evaluates_once_at_start=False, default_grid="uniform", default_steps=1))
