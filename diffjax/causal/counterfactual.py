"""Counterfactual generation with a factor-conditioned diffusion decoder (CausalDiffAE).

CausalDiffAE (Komanduri et al. 2024, Sec. 3.3): encode the factual image x to causal
factors z, invert x deterministically to its noise x_T under the condition z (DDIM
inversion; on the rectified-flow path, the probability-flow ODE dx/dt = v(x, t | z)
integrated from the data t = 1 back to the noise t = 0), intervene on z with the SCM
(`diffjax.causal.mechanisms`), and decode x_T under the counterfactual factors z' by the
same ODE forward:

  x_T = Phi_{1 -> 0}(x | z),  x_cf = Phi_{0 -> 1}(x_T | z').

Both integrations use `diffjax.solvers.integrate` on the same uniform grid of `num_steps`
steps with a deterministic ODE stepper (`solver`, default Heun).
"""
import jax.numpy as jnp

from diffjax.solvers import SAMPLERS
from diffjax.solvers.integrate import integrate


def invert(pipeline, params, x, cond, num_steps: int, solver: str = "heun"):
  """x (B, *shape) at t = 1 -> its noise at t = 0 under conditions cond (B, C)."""
  ts = jnp.linspace(1.0, 0.0, num_steps + 1)
  return integrate(SAMPLERS.get(solver).build(pipeline.path),
                   pipeline.fields(params, cond), x, ts).x


def decode(pipeline, params, noise, cond, num_steps: int, solver: str = "heun"):
  """noise (B, *shape) at t = 0 -> data at t = 1 under conditions cond (B, C)."""
  ts = jnp.linspace(0.0, 1.0, num_steps + 1)
  return integrate(SAMPLERS.get(solver).build(pipeline.path),
                   pipeline.fields(params, cond), noise, ts).x


def counterfactual(pipeline, params, x, z, z_counterfactual, num_steps: int,
                   solver: str = "heun"):
  """The counterfactual of x (B, *shape) with factors z (B, K) under counterfactual
  factors z' (B, K): decode(invert(x | z) | z')."""
  noise = invert(pipeline, params, x, z, num_steps, solver)
  return decode(pipeline, params, noise, z_counterfactual, num_steps, solver)
