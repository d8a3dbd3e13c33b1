"""SVDD: derivative-free guidance by soft value-based decoding.

"Derivative-Free Guidance in Continuous and Discrete Diffusion Models with Soft
Value-Based Decoding" (Li et al. 2024, Algorithm 1; masa-ue/SVDD): at every step draw M
candidates x'_1..x'_M from the pretrained (stochastic) transition p(x' | x), weight them by
exp(v(x'_m) / alpha) and keep one, drawn with those weights. SVDD-PM uses the value
v(x') = r(x1_hat(x')) of the reward r at the model's denoised estimate, so r need not be
differentiable. As M grows the step samples p(x' | x) exp(v(x') / alpha) / Z(x): for a
Gaussian prior N(mu, Sigma) and a linear reward r = a.x the posterior-mean value differs
from the soft value alpha log E[exp(r(x1) / alpha) | x'] by a constant, and the samples
approach the tilted target N(mu + Sigma a / alpha, Sigma) (tested, tolerance per M).

Written against the `Stepper` contract only: any stochastic stepper (DDIM with eta > 0,
ancestral, Euler–Maruyama, and token samplers of the discrete layer) gives the
candidates, by one step of the replicated batch (B M, ...) with the step's key; the value
is a function value_fn(fields, x, t) -> (B,) (`posterior_mean_value` for SVDD-PM on
continuous data; token models pass their own, e.g. the reward of the argmax of the
logits). With `shared_evaluation` (samplers that evaluate once per step at the current
state: their declaration's `evaluates_once_at_start`), the model is evaluated once on the
B states and its predictions are repeated for the M candidates; the value costs one
evaluation on the B M candidates. The chosen candidate's base-stepper state travels with it.
A model whose fields are bound to a per-example condition (a class-conditional run) is
evaluated on the candidates through `candidate_fields`: the same model under the condition
repeated M times, so candidate m of example b keeps b's condition.
nfe per step: 1 + M (shared) or 2 M, in evaluations of a batch of B.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Stepper
from diffjax.errors import ConfigError
from diffjax.guidance.method import GUIDANCE_METHODS, Cost, GuidanceMethod, require_context
from diffjax.guidance.model import frozen_fields, traced
from diffjax.solvers import SAMPLERS, Guidance, sampler_for


class SVDDState(NamedTuple):
  base: Any   # the base stepper's state for the replicated batch (B M, ...)


def posterior_mean_value(reward):
  """SVDD-PM's value: v(x, t) = reward(x1_hat(x, t)), reward: (B, ...) -> (B,)."""
  return lambda fields, x, t: reward(fields.evaluate(x, t).data)


def check_svdd(num_candidates, alpha):
  if not (isinstance(num_candidates, int) and num_candidates >= 1):
    raise ConfigError(f"SVDD needs num_candidates M >= 1 (an integer); got "
                      f"{num_candidates!r}.")
  if not traced(alpha) and not alpha > 0:
    raise ConfigError(f"SVDD's temperature alpha must be > 0; got {alpha}.")


def require_stochastic(sampler):
  """Refuses a sampler (a bound declaration) that draws no noise with its options."""
  if not sampler.stochastic:
    stochastic = [n for n in SAMPLERS if sampler_for(n).stochastic
                  and not SAMPLERS.get(n).tokens]
    raise ConfigError(f"SVDD draws its candidates from a stochastic sampler; "
                      f"sample.solver={sampler.name!r} draws no noise with these options. "
                      f"Use one that does: {', '.join(stochastic)}, or a sampler whose noise "
                      "option is nonzero (DDIM's eta, ...).")


def _repeat(tree, m):
  return jax.tree.map(lambda a: jnp.repeat(a, m, axis=0), tree)


def repeated_condition(cond, m):
  """A (B, ...) condition with each example's row repeated m times, (B m, ...), in the
  order of the replicated candidates; leaves without a batch axis (or of batch 1, which
  broadcast) are kept."""
  return jax.tree.map(lambda a: jnp.repeat(a, m, axis=0) if jnp.ndim(a) and a.shape[0] > 1
                      else a, cond)


def svdd(base: Stepper, value_fn, num_candidates, alpha, shared_evaluation=False,
         candidate_fields=None) -> Stepper:
  """SVDD around the stochastic stepper `base` (module docstring). `candidate_fields`: the
  fields on the (B M) candidates when they differ from the step's fields on the B states
  (a per-example condition, `repeated_condition`); None: the same fields."""
  check_svdd(num_candidates, alpha)
  m = num_candidates

  def init(x0, ts):
    return SVDDState(base.init(_repeat(x0, m), ts))

  def step(fields, x, state, t, t_next, key):
    if key is None:
      raise ValueError("SVDD draws candidates: pass a PRNG key.")
    batch = x.shape[0]
    k_step, k_pick = jax.random.split(key)
    candidates_in = _repeat(x, m)
    on_candidates = fields if candidate_fields is None else candidate_fields
    step_fields = on_candidates
    if shared_evaluation:
      step_fields = frozen_fields(_repeat(fields.evaluate(x, t), m), fields.names)
    candidates, base_state, nfe = base.step(step_fields, candidates_in, state.base, t,
                                            t_next, k_step)
    values = value_fn(on_candidates, candidates, t_next).reshape(batch, m)
    choice = jax.random.categorical(k_pick, values / alpha, axis=-1)        # (B,)
    rows = jnp.arange(batch) * m + choice

    def keep(leaf):
      if jnp.ndim(leaf) >= 1 and leaf.shape[0] == batch * m:
        return jnp.repeat(leaf[rows], m, axis=0)
      return leaf

    x_next = candidates[rows]
    base_state = jax.tree.map(keep, base_state)
    calls = (1 if shared_evaluation else m * nfe) + m
    return x_next, SVDDState(base_state), calls

  return Stepper(init, step, base.needs)


def _check(section, sampler):
  check_svdd(section.get("num_candidates", 8), section.get("alpha", 0.1))
  if sampler is not None:
    require_stochastic(sampler)


def _build(section, context):
  require_context(context, "svdd", "reward")
  m, alpha = section.get("num_candidates", 8), section.get("alpha", 0.1)
  model = context.model
  candidate_fields = model.fields_of(repeated_condition(model.cond, m))

  def wrap(stepper, sampler):
    require_stochastic(sampler)
    return svdd(stepper, posterior_mean_value(context.reward), m, alpha,
                shared_evaluation=sampler.evaluates_once_at_start,
                candidate_fields=candidate_fields)

  return Guidance(model.conditional(), wrap)


def _cost(section, sampler):
  """M candidate steps and M values per step, in calls on B examples: 1 + M with a
  shared evaluation, else M (e + 1) against the unguided sampler's e."""
  m = section.get("num_candidates", 8)
  if sampler.evaluates_once_at_start:
    return Cost(1.0 + m)
  return Cost(m * (sampler.evaluations + 1) / sampler.evaluations)


GUIDANCE_METHODS.register("svdd", GuidanceMethod(_build, _check, cost=_cost))
