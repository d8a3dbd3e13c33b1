"""LinearAG: classifier-free guidance whose unconditional call is a linear combination of
what the sampler already has.

"Adaptive Guidance: Training-free Acceleration of Conditional Diffusion Models" (Castillo
et al. 2023, Sec. 5, "LinearAG"): along a CFG trajectory the unconditional noise
prediction is well predicted by a per-step linear regression on quantities the sampler
already holds. Here (our reading of the paper; the choice of regressors is ours to state):

  eps_u_hat(x_k) = beta_k0 x_k + beta_k1 eps_c(x_k) + beta_k2 eps_c(x_{k-1})
                   + beta_k3 eps_u(x_{k-1}),

with eps_u(x_{k-1}) the previous step's unconditional prediction (the real one on an exact
step, the estimate otherwise), one scalar beta per step and regressor shared by every
example and pixel, fitted by least squares on a few calibration CFG trajectories
(`fit_linear_ag`). The first `exact_steps` steps call the network on [x, x] with [cond,
null] as CFG does (2 evaluations per example); the others call it on x with the condition
only (1 evaluation) and guide with the estimate: p_u_hat + w (p_c - p_u_hat), every
prediction converted from the estimated noise on the Gaussian path. The estimate replaces
the unconditional call; Adaptive Guidance (`diffjax.guidance.adaptive`) instead drops the
guidance term once the two predictions align.

When the unconditional prediction is exactly in the span of the regressors (e.g. a null
class that is a centred Gaussian: eps_u = sigma / (alpha^2 s^2 + sigma^2) x_t), the fitted
coefficients reproduce it and LinearAG is CFG (tests/test_acceleration_linear_ag.py).
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.core import Stepper, require_gaussian
from diffjax.errors import ConfigError
from diffjax.fields import gaussian_predictions
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceMethod, check_number
from diffjax.guidance.model import (ConditionalModel, check_one_evaluation, frozen_fields,
                                    mix, scalar_time, traced)
from diffjax.solvers import Guidance, sample

# The regressors of the unconditional noise estimate, in the order of a coefficient row.
REGRESSORS = ("x", "noise_c", "previous_noise_c", "previous_noise_u")


class LinearAGState(NamedTuple):
  """base: the base stepper's state; step: the index of the next step; previous_c /
  previous_u: the last step's conditional and unconditional (or estimated) noise
  predictions; features (R, B, ...) and target (B, ...): the regressors and the real
  unconditional noise of the last exact step (what `fit_linear_ag` records)."""
  base: Any
  step: jax.Array
  previous_c: Any
  previous_u: Any
  features: Any
  target: Any


def check_exact_steps(exact_steps, coefficients=None):
  """exact_steps >= 1 (the first step has no past predictions), and a coefficient table
  (N, 4) when given."""
  if not traced(exact_steps) and (int(exact_steps) != exact_steps or exact_steps < 1):
    raise ConfigError(f"LinearAG's exact_steps (steps with the real unconditional call) "
                      f"must be an integer >= 1; got {exact_steps!r}.")
  if coefficients is not None:
    shape = np.shape(coefficients)
    if len(shape) != 2 or shape[1] != len(REGRESSORS):
      raise ConfigError(f"LinearAG's coefficients are a (num_steps, {len(REGRESSORS)}) "
                        f"table (one row of {', '.join(REGRESSORS)} per step); got shape "
                        f"{shape}.")


def _features(x, c, previous_c, previous_u):
  return jnp.stack([x, c, previous_c, previous_u])


def linear_ag(base, model: ConditionalModel, path, scale, coefficients, exact_steps,
              sampler):
  """CFG with scale w where steps k >= exact_steps estimate the unconditional noise as
  coefficients[k] . (x_k, eps_c, previous eps_c, previous eps_u) (module docstring).

  base: the stepper of `sampler` (a bound declaration or registered name evaluating once
  at the start of a step); path: a Gaussian path; coefficients: (N, 4) for a grid of N
  steps, or None for exact steps only (CFG, recording the regressors: `fit_linear_ag`).
  nfe per example: 2 on an exact step, 1 on an estimated one.
  """
  check_exact_steps(exact_steps, coefficients)
  check_one_evaluation(sampler, "LinearAG")
  view = require_gaussian(path, "LinearAG")
  joint, names = model.joint("LinearAG")
  conditional_fields = model.conditional()
  table = None if coefficients is None else jnp.asarray(coefficients, jnp.float32)

  def init(x0, ts):
    if table is not None and table.shape[0] != ts.shape[0] - 1:
      raise ConfigError(f"LinearAG's coefficients have {table.shape[0]} rows for a grid of "
                        f"{ts.shape[0] - 1} steps; fit them on the grid you sample with.")
    zeros = jnp.zeros_like(x0)
    return LinearAGState(base.init(x0, ts), jnp.zeros((), jnp.int32), zeros, zeros,
                         _features(x0, zeros, zeros, zeros), zeros)

  def step(fields, x, state, t, t_next, key):
    del fields
    t = scalar_time(t, "LinearAG")

    def exact(_):
      c, u = joint(x, t)
      return c, u.noise, u.noise

    def estimated(_):
      c = conditional_fields.evaluate(x, t)
      row = table[jnp.minimum(state.step, table.shape[0] - 1)]
      u_noise = jnp.tensordot(row, _features(x, c.noise, state.previous_c,
                                             state.previous_u), 1)
      return c, u_noise, state.target

    if table is None:
      on_exact = jnp.ones((), bool)
      c, u_noise, target = exact(None)
    else:
      on_exact = state.step < exact_steps
      c, u_noise, target = jax.lax.cond(on_exact, exact, estimated, None)
    u = gaussian_predictions(u_noise, x, t, view, "noise")
    u = u._replace(**{n: None for n in u._fields if getattr(c, n) is None})
    guided = mix(c, u, scale)
    x_next, base_state, _ = base.step(frozen_fields(guided, names), x, state.base, t,
                                      t_next, key)
    features = _features(x, c.noise, state.previous_c, state.previous_u)
    new = LinearAGState(base_state, state.step + 1, c.noise, u_noise, features, target)
    return x_next, new, jnp.where(on_exact, 2, 1)

  return Stepper(init, step, base.needs)


def fit_linear_ag(model: ConditionalModel, path, sampler: str, x0, scale, *, num_steps,
                  key=None, grid=None, **options):
  """The (num_steps, 4) coefficients of LinearAG for `sampler` on its grid of
  `num_steps` steps: per step, the least-squares fit (minimum norm where the regressors
  are dependent, as at the first step, whose past predictions are zero) of the real
  unconditional noise by the regressors along CFG trajectories from the calibration
  draws x0 (B, ...). Fit once per model, sampler, grid and scale; sample from other
  draws."""
  record = lambda x_next, state: (state.features, state.target)
  guidance = Guidance(model.conditional(), lambda stepper, bound: linear_ag(
      stepper, model, path, scale, None, 1, bound))
  features, target = sample(sampler, None, path, x0, key, num_steps=num_steps,
                            guidance=guidance, record=record, grid=grid, **options).records
  n, r = features.shape[:2]
  design = features.reshape(n, r, -1).transpose(0, 2, 1)          # (N, B D, R)
  return jax.vmap(lambda a, y: jnp.linalg.lstsq(a, y)[0])(design, target.reshape(n, -1))


def _coefficients(section):
  coefficients = section.get("coefficients", None)
  if coefficients is None or len(coefficients) == 0:  # pylint: disable=g-explicit-length-test
    raise ConfigError("LinearAG needs sample.guidance.coefficients, the (num_steps, 4) table "
                      "that diffjax.guidance.fit_linear_ag fits on the grid you sample with.")
  return coefficients


def _check(section, sampler):
  check_number(section, "scale", 1.0)
  check_exact_steps(section.get("exact_steps", 1), _coefficients(section))
  if sampler is not None:
    check_one_evaluation(sampler, "LinearAG")


def _build(section, context):
  context.model.require_null("LinearAG")
  return Guidance(context.model.conditional(), lambda stepper, sampler: linear_ag(
      stepper, context.model, context.path, section.get("scale", 1.0),
      _coefficients(section), section.get("exact_steps", 1), sampler))


def _cost(section, sampler):
  """2 evaluations on the exact steps, 1 on the others (per example, relative to an
  unguided step)."""
  del sampler
  coefficients = section.get("coefficients", None)
  if coefficients is None or not len(coefficients):  # pylint: disable=g-explicit-length-test
    return Cost(2.0)
  n = len(coefficients)
  return Cost(1.0 + min(int(section.get("exact_steps", 1)), n) / n)


GUIDANCE_METHODS.register("linear_ag", GuidanceMethod(_build, _check,
                                                      needs_unconditional=True, cost=_cost))
