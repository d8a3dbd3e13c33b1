"""Faster Diffusion: the U-Net encoder at key steps only, its features propagated.

"Faster Diffusion: Rethinking the Role of UNet Encoder in Diffusion Models" (Li et al.
2023): along a sampling trajectory the encoder's features change little from step to step,
the decoder's much more; so the encoder (here: the input convolution, the down blocks and
the middle block, `diffjax.models.unet`) runs at key steps only, and at the steps between
two key steps the decoder reads the last key step's features with its own step's time
embedding. Since the decoder then no longer reads x_t, the decoder calls of all the steps
up to the next key step can run as ONE batched call at the key step (the paper's parallel
decoding, `parallel=True`); the sampler still steps one by one, converting each
prediction at its own x_t. Prior noise injection (the paper's remedy for lost texture)
adds noise_injection * x_0 (the initial noise) to the state after every step that ends at
t > injection_start (diffjax time: late, near the data).

`encoder_propagation` wraps the stepper of any sampler that evaluates once, at the start
of its step, like guidance does; with every step a key step it is the plain sampler
exactly (tests/test_acceleration_faster_diffusion.py). `paper_key_steps` gives the paper's
schedule: of DDIM's 50 steps the keys {0, 1, 2, 3, 5, 10, 15, 25, 35} (dense at the noisy
start, sparse later), scaled to N steps.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.core import Stepper
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.guidance.model import check_one_evaluation, frozen_fields, scalar_time
from diffjax.solvers import Guidance

# The paper's key steps of 50 DDIM steps, as step indices from the noise (its t = 50, 49,
# 48, 47, 45, 40, 35, 25, 15).
PAPER_KEY_STEPS_OF_50 = (0, 1, 2, 3, 5, 10, 15, 25, 35)


def paper_key_steps(num_steps):
  """The paper's key steps scaled to a grid of `num_steps` steps (indices, sorted)."""
  return tuple(sorted({int(round(k * num_steps / 50)) for k in PAPER_KEY_STEPS_OF_50}))


def check_key_steps(key_steps, num_steps):
  """Key steps as a sorted tuple of distinct step indices in [0, num_steps), starting at
  0 (the first step has no features to reuse), or a ConfigError."""
  try:
    steps = [int(k) for k in key_steps]
  except (TypeError, ValueError):
    raise ConfigError(f"Faster Diffusion's key steps are step indices; got "
                      f"{key_steps!r}.") from None
  if any(k != float(v) for k, v in zip(steps, key_steps)):
    raise ConfigError(f"Faster Diffusion's key steps are integer step indices; got "
                      f"{list(key_steps)}.")
  outside = [k for k in steps if not 0 <= k < num_steps]
  if outside:
    raise ConfigError(f"Faster Diffusion key steps {outside} are outside the sampler's "
                      f"grid of {num_steps} steps (indices 0 to {num_steps - 1}).")
  if 0 not in steps:
    raise ConfigError("Faster Diffusion's key steps must include step 0: the first step "
                      "has no encoder features to reuse.")
  return tuple(sorted(set(steps)))


def parallel_width(key_steps, num_steps):
  """How many steps' decoder calls one key step batches under parallel decoding: the
  longest run of steps between two key steps (or after the last), at least 1. Every key
  step decodes that many (a fixed shape), so parallel decoding trades decoder FLOPs for
  fewer, larger calls."""
  keys = np.asarray(check_key_steps(key_steps, num_steps))
  following = np.diff(np.append(keys, num_steps)) - 1
  return max(int(following.max()), 1)


class PropagationState(NamedTuple):
  """base: the base stepper's state; step: the next step's index; features: the last key
  step's encoder features; outputs: (M, B, ...) the decoder's outputs for the M steps
  after the last key step (parallel decoding; unused otherwise); x0: the initial noise;
  ts: the grid."""
  base: Any
  step: jax.Array
  features: Any
  outputs: Any
  x0: Any
  ts: Any


def encoder_propagation(base: Stepper, apply_fn, fields_of_output, key_steps, sampler, *,
                        parallel=False, noise_injection=0.0, injection_start=1.0):
  """The stepper `base` (of `sampler`, which must evaluate once at a step's start) with the
  network's encoder run at `key_steps` only (module docstring).

  apply_fn(x, t, encoder_features=None, return_encoder_features=False) -> the network
  output (and the features): a U-Net apply closed over its parameters and condition;
  fields_of_output(output) -> `Fields` whose evaluate(x, t) converts that output at (x, t)
  into predictions (the run's objective with an apply returning `output`); key_steps:
  indices into the grid `sample` runs (checked against it at init). nfe counts network
  calls: 1 per step whatever the encoder did.
  """
  check_one_evaluation(sampler, "Faster Diffusion")
  if float(noise_injection) < 0 or not 0.0 <= float(injection_start) <= 1.0:
    raise ConfigError(f"Faster Diffusion's noise_injection must be >= 0 and "
                      f"injection_start in [0, 1]; got {noise_injection}, {injection_start}.")
  keys = np.asarray(sorted(set(int(k) for k in key_steps)), np.int32)
  names = fields_of_output(None).names

  def init(x0, ts):
    num_steps = ts.shape[0] - 1
    check_key_steps(key_steps, num_steps)
    out, features = jax.eval_shape(lambda x: apply_fn(x, ts[0], return_encoder_features=True),
                                   x0)
    width = parallel_width(key_steps, num_steps) if parallel else 1
    zeros = lambda s: jnp.zeros(s.shape, s.dtype)
    outputs = jnp.zeros((width,) + out.shape, out.dtype)
    return PropagationState(base.init(x0, ts), jnp.zeros((), jnp.int32),
                            jax.tree.map(zeros, features), outputs, x0, jnp.asarray(ts))

  def step(fields, x, state, t, t_next, key):
    del fields
    ts = state.ts
    t = scalar_time(t, "Faster Diffusion")
    is_key = jnp.isin(state.step, jnp.asarray(keys))
    width = state.outputs.shape[0]

    def key_step(_):
      out, features = apply_fn(x, t, return_encoder_features=True)
      if not parallel:
        return out, features, state.outputs
      later = jnp.take(ts, jnp.minimum(state.step + 1 + jnp.arange(width), ts.shape[0] - 1))
      batch = x.shape[0]
      tiled = lambda a: jnp.concatenate([a] * width)
      outs = apply_fn(tiled(x), jnp.repeat(later, batch),
                      encoder_features=jax.tree.map(tiled, features))
      return out, features, outs.reshape((width,) + out.shape)

    def propagated(_):
      if parallel:
        since = state.step - jnp.max(jnp.where(jnp.asarray(keys) <= state.step,
                                               jnp.asarray(keys), 0)) - 1
        return state.outputs[since], state.features, state.outputs
      return (apply_fn(x, t, encoder_features=state.features), state.features,
              state.outputs)

    if len(keys) == int(ts.shape[0]) - 1:   # Every step a key step: the plain sampler.
      out, features, outputs = key_step(None)
    else:
      out, features, outputs = jax.lax.cond(is_key, key_step, propagated, None)
    predictions = fields_of_output(out).evaluate(x, t)
    x_next, base_state, used = base.step(frozen_fields(predictions, names), x, state.base,
                                         t, t_next, key)
    if noise_injection:
      x_next = x_next + jnp.where(t_next > injection_start, noise_injection, 0.0) * state.x0
    new = PropagationState(base_state, state.step + 1, features, outputs, state.x0, ts)
    return x_next, new, used

  return Stepper(init, step, base.needs)


def run_fields_of_output(objective, path, params, cond):
  """fields_of_output for a trained run: output -> the run objective's completed fields of
  a network that returns `output` (None: only the names)."""
  return lambda output: complete(objective.fields(lambda *args, **kwargs: output, params,
                                                  cond), path)


def faster_diffusion(apply, objective, path, params, cond, key_steps, *, parallel=False,
                     noise_injection=0.0, injection_start=1.0) -> Guidance:
  """Faster Diffusion as `sample(name, None, path, x0, guidance=...)` runs it, for a
  U-Net `apply(params, x, t, cond, ...)` (`diffjax.models.unet`) trained with
  `objective` on `path`."""
  fields_of_output = run_fields_of_output(objective, path, params, cond)

  def network(x, t, **kwargs):
    # Parallel decoding calls the network on several copies of the batch.
    given = cond
    if cond is not None and x.shape[0] != jnp.shape(cond)[0]:
      given = jnp.concatenate([cond] * (x.shape[0] // jnp.shape(cond)[0]))
    return apply(params, x, t, given, **kwargs)

  plain = complete(objective.fields(apply, params, cond), path)
  return Guidance(plain, lambda stepper, sampler: encoder_propagation(
      stepper, network, fields_of_output, key_steps, sampler, parallel=parallel,
      noise_injection=noise_injection, injection_start=injection_start))


def relative_changes(sequence):
  """(N, ...) -> (N - 1,) |a_{k+1} - a_k| / |a_k|, the norms over everything but the
  leading axis (a pytree: its leaves' squares summed)."""
  leaves = jax.tree.leaves(sequence)
  flat = jnp.concatenate([a.reshape(a.shape[0], -1) for a in leaves], axis=1)
  return jnp.linalg.norm(flat[1:] - flat[:-1], axis=1) / jnp.maximum(
      jnp.linalg.norm(flat[:-1], axis=1), 1e-12)


def encoder_decoder_changes(apply_fn, trajectory, ts):
  """The paper's observation, measured: the relative change between consecutive sampling
  steps of the encoder's features (the skips and the middle block's output) and of the
  decoder's output, each (N - 1,), on a sampled trajectory (N + 1, B, ...) over the grid
  ts (N + 1,) (the states at the start of the N steps are used).
  apply_fn(x, t, return_encoder_features=True) -> (output, features)."""
  outs, features = jax.lax.map(
      lambda xt: apply_fn(xt[0], xt[1], return_encoder_features=True),
      (trajectory[:-1], ts[:-1]))
  return relative_changes(features), relative_changes(outs)


def network_flops(apply_fn, x, t):
  """(FLOPs of one full network call, FLOPs of the decoder alone) on the batch x, from
  XLA's cost analysis of the compiled calls. apply_fn as in `encoder_decoder_changes`."""
  def flops(fn, *args):
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))
  _, features = jax.eval_shape(lambda x: apply_fn(x, t, return_encoder_features=True), x)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), features)
  return (flops(lambda x: apply_fn(x, t), x),
          flops(lambda x, f: apply_fn(x, t, encoder_features=f), x, zeros))
