"""Categorical sampling that keeps probabilities below float32's resolution.

"Masked Diffusion Models are Secretly Time-Agnostic Masked Models and Exploit Inaccurate
Categorical Sampling" (Zheng et al., section 4) shows that Gumbel-max with float32 uniforms
truncates small probabilities: a float32 uniform u lies on a grid of spacing 2^-23, so the
Gumbel noise -log(-log u) never exceeds about 16.6 and a token whose probability is 1e-7 of
the leading one's is drawn about half as often as it should be (at 1e-8, almost never).
Samplers of masked models call a categorical at every step for every position with
probabilities of order (step size) x (token probability), so the truncation lowers the
diversity of generated text. Their fix is float64 Gumbel noise; JAX computes in float32
unless `jax_enable_x64` is set for the whole program, so diffjax samples exactly without it:

  "inverse_cdf" (default): a binary-tree inverse CDF. The probabilities are summed pairwise
    up a binary tree; a draw descends from the root, at each node taking the lighter child
    with probability r = lighter / (left + right) <= 1/2 by comparing a fresh uniform with r.
    The uniform carries 64 random bits, so it resolves every r down to 2^-64 at float32's
    relative precision; each token is drawn with its probability to a relative error of
    about depth x 2^-24 (depth = ceil(log2 V)). No float64, no truncation.
  "gumbel_float32": argmax(logits + float32 Gumbel noise), i.e. `jax.random.categorical`
    with its default noise; kept as a switch to study the truncation.

  ids = sample_categorical(key, logits)                 # logits (..., V) -> ids (...) int32
  ids = sample_categorical(key, logits, shape=(n,))     # n draws from one (V,) distribution

Logits may hold -inf (impossible tokens); a row must have at least one finite entry.
"""
import math

import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError

METHODS = ("inverse_cdf", "gumbel_float32")


def check_method(method: str) -> str:
  if method not in METHODS:
    raise ConfigError(f"Unknown categorical sampling method {method!r}; valid: {METHODS}.")
  return method


def uniform_64bit(key, shape):
  """U[0, 1) in float32 from 64 random bits, with float32's relative precision at every
  scale down to 2^-64 (a plain float32 uniform has absolute spacing 2^-23 everywhere)."""
  bits = jax.random.bits(key, (2,) + tuple(shape), jnp.uint32)
  high = bits[0].astype(jnp.float32) * 2.0 ** -32
  low = bits[1].astype(jnp.float32) * 2.0 ** -64
  return high + low


def gumbel_from_uniform(u):
  """Gumbel noise -log(-log u) from uniforms u in (0, 1)."""
  return -jnp.log(-jnp.log(u))


def float32_uniform(key, shape):
  """The uniforms of float32 Gumbel-max: on jax's grid of spacing 2^-23, floored at the
  smallest normal float32 (as `jax.random.gumbel` in its default mode)."""
  return jax.random.uniform(key, shape, jnp.float32, minval=jnp.finfo(jnp.float32).tiny,
                            maxval=1.0)


def _tree_sums(probs):
  """(..., V) -> [level_0, ..., level_D]: level_d (..., 2^d) holds the sums of the 2^(D - d)
  leaves under each node; level_D is the zero-padded leaves, D = ceil(log2 V)."""
  depth = max(1, math.ceil(math.log2(probs.shape[-1])))
  pad = 2 ** depth - probs.shape[-1]
  level = jnp.pad(probs, [(0, 0)] * (probs.ndim - 1) + [(0, pad)])
  levels = [level]
  for _ in range(depth):
    level = level.reshape(level.shape[:-1] + (level.shape[-1] // 2, 2)).sum(-1)
    levels.append(level)
  return levels[::-1]


def _inverse_cdf(key, logits, shape):
  logits = jnp.asarray(logits, jnp.float32)
  probs = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, -1, keepdims=True)))
  levels = _tree_sums(probs)
  depth = len(levels) - 1
  batch = tuple(shape) if shape is not None else logits.shape[:-1]
  u = uniform_64bit(key, (depth,) + batch)
  node = jnp.zeros(batch, jnp.int32)
  for d in range(1, depth + 1):
    level = jnp.broadcast_to(levels[d], batch + levels[d].shape[-1:])
    pick = lambda i: jnp.take_along_axis(level, i[..., None], -1)[..., 0]
    left, right = pick(2 * node), pick(2 * node + 1)
    lighter_is_left = left <= right
    lighter = jnp.where(lighter_is_left, left, right)
    # Take the lighter child with probability lighter / (left + right): u < r, with u
    # resolved far below r, so even r = 1e-15 is honoured.
    take_lighter = u[d - 1] * (left + right) < lighter
    go_left = jnp.where(take_lighter, lighter_is_left, ~lighter_is_left)
    node = 2 * node + jnp.where(go_left, 0, 1)
  return node


def _gumbel_float32(key, logits, shape):
  logits = jnp.asarray(logits, jnp.float32)
  batch = tuple(shape) if shape is not None else logits.shape[:-1]
  noise = gumbel_from_uniform(float32_uniform(key, batch + logits.shape[-1:]))
  return jnp.argmax(logits + noise, -1).astype(jnp.int32)


_DRAWS = {"inverse_cdf": _inverse_cdf, "gumbel_float32": _gumbel_float32}
assert tuple(_DRAWS) == METHODS


def sample_categorical(key, logits, *, method: str = "inverse_cdf", shape=None):
  """Draws ids from softmax(logits) along the last axis.

  Args:
    key: PRNG key.
    logits: (..., V) unnormalised log-probabilities (-inf allowed).
    method: "inverse_cdf" (exact, default) or "gumbel_float32" (truncates probabilities
      below about 1e-7 of the largest; for study).
    shape: optional batch shape of the draws; logits (..., V) must broadcast to
      shape + (V,) (e.g. one (V,) distribution and shape (n,) for n draws).

  Returns:
    int32 ids of shape `shape` (default logits.shape[:-1]).
  """
  check_method(method)
  return _DRAWS[method](key, logits, shape)


def top_p_logits(logits, top_p: float):
  """Nucleus filtering ("The Curious Case of Neural Text Degeneration", Holtzman et al.,
  section 3.1): keeps the smallest set of most probable tokens whose probability reaches
  top_p and sets the others to -inf. logits (..., V); top_p in (0, 1] (1 keeps all)."""
  if top_p >= 1.0:
    return logits
  probs = jax.nn.softmax(logits, -1)
  order = jnp.argsort(-probs, -1)
  sorted_probs = jnp.take_along_axis(probs, order, -1)
  before = jnp.cumsum(sorted_probs, -1) - sorted_probs  # mass strictly before each token
  kept = jnp.where(before < top_p, sorted_probs, jnp.inf)
  threshold = jnp.min(kept, -1, keepdims=True)  # the least probable kept token
  return jnp.where(probs >= threshold, logits, -jnp.inf)
