"""Token samplers for masked diffusion, as `Stepper`s run by `diffjax.solvers.integrate`.

Generation runs t from 0 (all masked) to 1 (clean) on a `MaskingPath`. The fields give
`logits` (B, L, V) over the real tokens at (x, t); only masked positions ever change, so a
prompt written into x0 stays fixed and only its free (masked) positions are filled
(infilling comes for free). Every draw goes through `diffjax.categorical` (exact by default).

  masked_ancestral one step t -> s of the reverse process: a masked token becomes v with
                   probability mu_v (alpha_v(s) - alpha_v(t)) / (1 - alpha_v(t)) and stays
                   masked otherwise ("Simple and Effective Masked Diffusion Language Models",
                   Sahoo et al., eq. 7; per-class alpha for state-dependent schedules).
                   cache=True reuses the last logits while no token changed ("Your Absorbing
                   Discrete Diffusion Secretly Models the Conditional Distributions of Clean
                   Data", Ou et al., section 4.2): valid for networks without time input. On
                   N steps with all L tokens masked at t = 0 and a linear schedule, a
                   sequence then costs 1 + (N - 1)(1 - (1 - 1/N)^L) <= L + 1 calls on average.
  first_hitting    one token per event, at the exact time it is revealed ("Masked Diffusion
                   Models are Secretly Time-Agnostic Masked Models and Exploit Inaccurate
                   Categorical Sampling", Zheng et al., algorithm 1): from n masked tokens at
                   level t the next event is at alpha^-1(1 - (1 - alpha(t)) u^(1/n)), a uniformly
                   chosen masked position is drawn from mu. Exactly one network call per
                   masked token. The events fall at random times, so they cannot lie on a
                   fixed grid: the stepper carries the event time (B,) in its state and takes
                   one grid step per event; the grid (num_steps = L) only counts events.
  semi_autoregressive  blocks of `block_size` positions filled left to right, each by its
                   own inner sampler (ancestral over steps_per_block steps from local time 0
                   to 1, or first_hitting); later blocks stay masked meanwhile (the model sees
                   them masked). The grid counts steps; the network sees the block's local time.
  autoregressive   left to right, one position per step, from `next_token_logits` (the
                   causal baseline's only prediction; a masked model gives them too).

Temperature and top-p reshape mu before each draw. Token guidance (classifier-free with a
label, and unsupervised CFG with the prompt masked) are field transforms below.

  result = sample_tokens("first_hitting", fields, path, x0, key)   # a `Solution`
  result.x (B, L) tokens, result.nfe the network calls
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from diffjax.categorical import check_method, sample_categorical, top_p_logits
from diffjax.core import TOKEN_PREDICTIONS, Fields, Stepper
from diffjax.errors import ConfigError
from diffjax.solvers.sampler import SAMPLERS, Sampler
from diffjax.solvers.sampling import sample


def token_log_probs(logits, temperature=1.0, top_p=1.0):
  """log mu from logits (..., V): divided by temperature, nucleus-filtered, normalised."""
  if temperature <= 0:
    raise ConfigError(f"temperature must be > 0; got {temperature}.")
  if not 0 < top_p <= 1:
    raise ConfigError(f"top_p must be in (0, 1]; got {top_p}.")
  logits = logits.astype(jnp.float32) / temperature
  return jax.nn.log_softmax(top_p_logits(logits, top_p), -1)


def _check_options(temperature, top_p, method):
  token_log_probs(jnp.zeros((1,)), temperature, top_p)
  check_method(method)


def _log_diff(high, low):
  return jnp.log(jnp.maximum(high - low, 0.0))


def ancestral_update(path, log_mu, x, eligible, t, t_next, key, method="inverse_cdf"):
  """One reverse step t -> t_next of the masked positions of x (B, L) where `eligible`.

  log_mu: (B, L, V) log-probabilities of the clean token. Returns x at t_next.
  """
  a_t, a_s = path.alpha(t), path.alpha(t_next)  # () or (V,)
  if path.state_dependent:
    a_t, a_s = a_t[None, None], a_s[None, None]
  log_move = _log_diff(a_s, a_t) - jnp.log(1.0 - a_t)
  if path.state_dependent:
    log_stay = jax.nn.logsumexp(log_mu + jnp.log(1.0 - a_s) - jnp.log(1.0 - a_t), -1)
  else:
    log_stay = jnp.broadcast_to(jnp.log(1.0 - a_s) - jnp.log(1.0 - a_t), x.shape)
  joint = jnp.concatenate([log_mu + log_move, log_stay[..., None]], -1)
  draw = sample_categorical(key, joint, method=method)
  token = jnp.where(draw == path.vocab_size, path.mask_id, draw)
  return jnp.where((x == path.mask_id) & eligible, token, x).astype(x.dtype)


def first_hitting_update(path, fields, x, eligible, level, key, temperature=1.0, top_p=1.0,
                         method="inverse_cdf"):
  """One unmasking event among the eligible masked positions of x (B, L).

  level: (B,) current time of each sequence. Returns (x_next, level_next, nfe): sequences
  with nothing left to unmask keep their state; the network is not called if none is left.
  """
  k_time, k_position, k_token = jax.random.split(key, 3)
  masked = (x == path.mask_id) & eligible
  n = jnp.sum(masked, -1)
  active = n > 0
  u = jax.random.uniform(k_time, level.shape, minval=1e-12)
  remaining = (1.0 - path.alpha(level)) * u ** (1.0 / jnp.maximum(n, 1))
  level_next = jnp.where(active, path.time_at_alpha(1.0 - remaining), level)
  logits = jax.lax.cond(jnp.any(active),
                        lambda: fields.evaluate(x, level_next).logits.astype(jnp.float32),
                        lambda: jnp.zeros(x.shape + (path.vocab_size,), jnp.float32))
  scores = jnp.where(masked, jax.random.uniform(k_position, x.shape), -1.0)
  position = jnp.argmax(scores, -1)
  rows = jnp.arange(x.shape[0])
  log_mu = token_log_probs(logits[rows, position], temperature, top_p)
  token = sample_categorical(k_token, log_mu, method=method)
  x_next = x.at[rows, position].set(jnp.where(active, token, x[rows, position]))
  return x_next, level_next, jnp.any(active).astype(jnp.int32)


class AncestralState(NamedTuple):
  logits: jax.Array  # (B, L, V) the last network output (cache=True), else (0,)
  fresh: jax.Array   # bool: x has not changed since `logits` were computed


def ancestral(path, *, cache=False, temperature=1.0, top_p=1.0,
              method="inverse_cdf") -> Stepper:
  """Ancestral steps on the grid (see the module docstring)."""
  _check_options(temperature, top_p, method)

  def init(x0, ts):
    del ts
    shape = x0.shape + (path.vocab_size,) if cache else (0,)
    return AncestralState(jnp.zeros(shape, jnp.float32), jnp.zeros((), bool))

  def step(fields, x, state, t, t_next, key):
    if cache:
      logits = jax.lax.cond(state.fresh, lambda: state.logits,
                            lambda: fields.evaluate(x, t).logits.astype(jnp.float32))
      nfe = 1 - state.fresh.astype(jnp.int32)
    else:
      logits, nfe = fields.evaluate(x, t).logits, 1
    log_mu = token_log_probs(logits, temperature, top_p)
    x_next = ancestral_update(path, log_mu, x, True, t, t_next, key, method)
    fresh = jnp.all(x_next == x) if cache else state.fresh
    return x_next, AncestralState(logits if cache else state.logits, fresh), nfe

  return Stepper(init, step, ("logits",))


class LevelState(NamedTuple):
  level: jax.Array  # (B,) time of the last unmasking event


def first_hitting(path, *, temperature=1.0, top_p=1.0, method="inverse_cdf") -> Stepper:
  """One unmasking event per grid step, the event time in the state (see the module
  docstring); the grid must have at least as many steps as masked tokens."""
  _check_options(temperature, top_p, method)
  path.require_state_independent("The first_hitting sampler")

  def init(x0, ts):
    del ts
    return LevelState(jnp.zeros(x0.shape[:1], jnp.float32))

  def step(fields, x, state, t, t_next, key):
    del t, t_next
    x_next, level, nfe = first_hitting_update(path, fields, x, True, state.level, key,
                                              temperature, top_p, method)
    return x_next, LevelState(level), nfe

  return Stepper(init, step, ("logits",))


class BlockState(NamedTuple):
  index: jax.Array  # int32 step counter
  level: jax.Array  # (B,) first-hitting event time inside the current block


def semi_autoregressive(path, *, block_size: int, inner="first_hitting", steps_per_block=None,
                        temperature=1.0, top_p=1.0, method="inverse_cdf") -> Stepper:
  """Blocks of block_size positions left to right (see the module docstring).

  inner: "first_hitting" (block_size steps per block) or "ancestral" (steps_per_block).
  """
  _check_options(temperature, top_p, method)
  if inner not in ("first_hitting", "ancestral"):
    raise ConfigError(f"Unknown inner sampler {inner!r}; valid: first_hitting, ancestral.")
  if block_size < 1:
    raise ConfigError(f"block_size must be >= 1; got {block_size}.")
  if inner == "first_hitting":
    path.require_state_independent("semi_autoregressive with first_hitting")
    steps_per_block = block_size
  elif not steps_per_block or steps_per_block < 1:
    raise ConfigError(f"semi_autoregressive with ancestral needs steps_per_block >= 1; got "
                      f"{steps_per_block}.")

  def init(x0, ts):
    del ts
    return BlockState(jnp.zeros((), jnp.int32), jnp.zeros(x0.shape[:1], jnp.float32))

  def step(fields, x, state, t, t_next, key):
    del t, t_next
    block, j = jnp.divmod(state.index, steps_per_block)
    position = jnp.arange(x.shape[1])
    eligible = jnp.broadcast_to((position // block_size) == block, x.shape)
    level = jnp.where(j == 0, 0.0, state.level)
    if inner == "first_hitting":
      x_next, level, nfe = first_hitting_update(path, fields, x, eligible, level, key,
                                                temperature, top_p, method)
    else:
      local, local_next = j / steps_per_block, (j + 1) / steps_per_block
      log_mu = token_log_probs(fields.evaluate(x, local).logits, temperature, top_p)
      x_next = ancestral_update(path, log_mu, x, eligible, local, local_next, key, method)
      nfe = 1
    return x_next, BlockState(state.index + 1, level), nfe

  return Stepper(init, step, ("logits",))


class CounterState(NamedTuple):
  index: jax.Array


def autoregressive(path, *, temperature=1.0, top_p=1.0, method="inverse_cdf") -> Stepper:
  """Position i at step i from logits[:, i] (fields of a causal model whose position i
  predicts token i; see `diffjax.objectives.autoregressive`)."""
  _check_options(temperature, top_p, method)

  def init(x0, ts):
    del x0, ts
    return CounterState(jnp.zeros((), jnp.int32))

  def step(fields, x, state, t, t_next, key):
    del t_next
    logits = jax.lax.dynamic_index_in_dim(fields.evaluate(x, t).next_token_logits,
                                          state.index, 1, keepdims=False)
    token = sample_categorical(key, token_log_probs(logits, temperature, top_p), method=method)
    column = jax.lax.dynamic_index_in_dim(x, state.index, 1, keepdims=False)
    token = jnp.where(column == path.mask_id, token, column)  # prompt tokens stay
    x_next = jax.lax.dynamic_update_index_in_dim(x, token.astype(x.dtype), state.index, 1)
    return x_next, CounterState(state.index + 1), 1

  return Stepper(init, step, ("next_token_logits",))


def _semi_autoregressive_steps(x0, block_size, inner="first_hitting", steps_per_block=None,
                               **_):
  """One grid step per step of every block: block_size per block for first_hitting."""
  blocks = -(-x0.shape[1] // block_size)
  return blocks * (block_size if inner == "first_hitting" else steps_per_block)


def _one_per_position(x0, **_):
  return x0.shape[1]


# Token samplers are stochastic and read logits (autoregressive: next-token logits);
# none has an order in the step size.
_TOKEN = dict(evaluations=1, stochastic=True, needs=("logits",))
SAMPLERS.register("masked_ancestral", Sampler(ancestral, evaluates_once_at_start=True,
                                              **_TOKEN))
SAMPLERS.register("first_hitting", Sampler(first_hitting, default_steps=_one_per_position,
                                           **_TOKEN))
SAMPLERS.register("semi_autoregressive", Sampler(
    semi_autoregressive, default_steps=_semi_autoregressive_steps, **_TOKEN))
SAMPLERS.register("autoregressive", Sampler(
    autoregressive, evaluates_once_at_start=True, default_steps=_one_per_position,
    **dict(_TOKEN, needs=("next_token_logits",))))


def token_samplers():
  """The names of the registered samplers that draw tokens."""
  return tuple(name for name in SAMPLERS if SAMPLERS.get(name).tokens)


def minimum_num_steps(name, length, options) -> int:
  """Grid steps the token sampler `name` needs to fill `length` masked positions with
  `options`: its declared default_steps (one per event for first_hitting /
  autoregressive, every step of every block for semi_autoregressive); 1 for a sampler
  without a default (masked_ancestral: any grid ends clean at t = 1)."""
  steps = SAMPLERS.get(name).steps_for(jnp.zeros((1, length), jnp.int32), options)
  return 1 if steps is None else steps


def sample_tokens(name, fields: Fields, path, x0, key, *, num_steps=None,
                  return_trajectory=False, **options):
  """Runs the token sampler registered as `name` (`token_samplers()`, in the shared
  `SAMPLERS` registry) from x0 (B, L) (masked where free) on a uniform grid.

  num_steps: grid steps for masked_ancestral (required); the other samplers default to what
  they need (their `default_steps`: L events for first_hitting and autoregressive, every
  step of every block for semi_autoregressive). Returns `diffjax.solvers.integrate.Solution`.
  """
  if not SAMPLERS.get(name).tokens:
    raise ConfigError(f"{name!r} is not a token sampler; valid: "
                      f"{', '.join(token_samplers())}.")
  if num_steps is not None and num_steps < 1:
    raise ConfigError(f"num_steps must be >= 1; got {num_steps}.")
  return sample(name, fields, path, x0, key, num_steps=num_steps,
                return_trajectory=return_trajectory, **options)


# ----------------------------------------------------------------------------------------
# Guidance for tokens: field transforms on `logits`.


def guided_log_probs(conditional_logits, unconditional_logits, weight):
  """l_u + (w + 1)(l_c - l_u) on log-probabilities ("Classifier-Free Diffusion Guidance",
  Ho & Salimans, eq. 6, in logit space as in "Scaling up Masked Diffusion Models on Text",
  Nie et al., section 4); w = 0 is the conditional model."""
  l_c = jax.nn.log_softmax(conditional_logits.astype(jnp.float32), -1)
  l_u = jax.nn.log_softmax(unconditional_logits.astype(jnp.float32), -1)
  return l_u + (weight + 1.0) * (l_c - l_u)


def _guided(conditional: Fields, evaluate_both, weight) -> Fields:
  """Fields whose token predictions (those `conditional` gives) are guided_log_probs of
  the pair evaluate_both(x, t) -> (conditional, unconditional) Predictions; a prediction
  that is the same array as one already guided (a masked model gives its logits under both
  names) is guided once."""
  names = tuple(n for n in conditional.names if n in TOKEN_PREDICTIONS)

  def evaluate(x, t):
    c, u = evaluate_both(x, t)
    guided, done = {}, {}
    for name in names:
      key = (id(getattr(c, name)), id(getattr(u, name)))
      if key not in done:
        done[key] = guided_log_probs(getattr(c, name), getattr(u, name), weight)
      guided[name] = done[key]
    return c._replace(**guided)

  return Fields(evaluate, names)


def classifier_free_guidance(conditional: Fields, unconditional: Fields, weight) -> Fields:
  """Guided token predictions from a label-conditional and an unconditional (null-label)
  evaluation of the same model; one guided evaluation costs two network calls."""
  return _guided(conditional, lambda x, t: (conditional.evaluate(x, t),
                                            unconditional.evaluate(x, t)), weight)


def unsupervised_cfg(fields: Fields, prompt, mask_id: int, weight) -> Fields:
  """Unsupervised classifier-free guidance for masked models (Nie et al., section 4): the
  unconditional logits are the same model's with the prompt positions (prompt: (B, L)
  bool) masked. One guided evaluation costs two network calls."""
  fields.require(("logits",), "Unsupervised classifier-free guidance (a masked model)")
  return _guided(fields, lambda x, t: (fields.evaluate(x, t),
                                       fields.evaluate(jnp.where(prompt, mask_id, x), t)),
                 weight)

