"""The masking (absorbing-state) process for tokens, in diffjax time: t = 0 all masked,
t = 1 clean.

A clean token x1 = v is visible at time t with probability alpha_v(t) and replaced by the
mask id otherwise, independently per position ("Simplified and Generalized Masked
Diffusion for Discrete Data", Shi et al. (MD4), section 2; "Simple and Effective Masked
Diffusion Language Models", Sahoo et al. (MDLM), section 3). alpha increases from
alpha(0) = 0 to alpha(1) = 1. MD4 runs time the other way (s = 1 - t, s = 0 clean); its
schedules become, in diffjax time:

  linear       alpha(t) = t
  cosine       alpha(t) = 1 - cos(pi t / 2)
  polynomial   alpha(t) = 1 - (1 - t)^w                     (w = `exponent`)
  geometric    alpha(t) = (e(t) - e(0)) / (e(1) - e(0)),  e(t) = exp(-s_min^t s_max^(1-t))
               (MD4's exp(-s_min^(1-s) s_max^s), affinely normalised here so that the
               endpoints are exact and the NELBO needs no prior or reconstruction term)

State-dependent schedule (MD4's GenMD4, section 5): `exponent` may be a sequence of V
per-class exponents w_v, alpha_v(t) = 1 - (1 - t)^(w_v): tokens of class v are revealed
on their own clock. Only the polynomial family has this option.

  path = masking_path("linear", vocab_size=12)      # mask id 12 by default
  path = build_path("masked", schedule="linear", vocab_size=12)   # the same, by name
  xt = path.sample(key, t, None, x1)                # x1 (B, L) int, t () or (B,)

The process satisfies the path protocol of `diffjax.core` (`PathProtocol`): it is
one-sided, its own source the all-mask sequence (`source_sample`), and has no Gaussian
view, so the pipeline, the sampler registry and `diffjax.fields.complete` treat it as any
other path.

The mask id must not be a real token: it is >= vocab_size, and models embed
max(vocab_size, mask_id + 1) ids while predicting only the vocab_size real ones (SUBS).
"""
import dataclasses
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from diffjax.core import TINY
from diffjax.errors import ConfigError
from diffjax.paths.interpolants import PATHS
from diffjax.registry import Registry

SCHEDULES = Registry("masking schedule")


@dataclasses.dataclass(frozen=True)
class Schedule:
  """alpha(t), its derivative and its inverse; t any shape (exponent-broadcast for the
  state-dependent polynomial, whose functions return shape t.shape + (V,))."""
  alpha: Callable
  dalpha: Callable
  inverse: Optional[Callable]  # alpha -> t (None: no closed form).


@SCHEDULES.register("linear")
def linear_schedule() -> Schedule:
  return Schedule(lambda t: t, jnp.ones_like, lambda a: a)


@SCHEDULES.register("cosine")
def cosine_schedule() -> Schedule:
  half_pi = 0.5 * math.pi
  return Schedule(lambda t: 1.0 - jnp.cos(half_pi * t),
                  lambda t: half_pi * jnp.sin(half_pi * t),
                  lambda a: jnp.arccos(jnp.clip(1.0 - a, -1.0, 1.0)) / half_pi)


@SCHEDULES.register("polynomial")
def polynomial_schedule(exponent=1.0) -> Schedule:
  w = jnp.asarray(exponent, jnp.float32)
  if w.ndim == 0:
    return Schedule(lambda t: 1.0 - (1.0 - t) ** w,
                    lambda t: w * jnp.maximum(1.0 - t, TINY) ** (w - 1.0),
                    lambda a: 1.0 - jnp.maximum(1.0 - a, 0.0) ** (1.0 / w))
  def per_class(t):  # (...) -> (..., 1) and the exponents as (1, ..., 1, V)
    t = jnp.asarray(t)
    return t[..., None], w.reshape((1,) * t.ndim + w.shape)

  def alpha(t):
    t, ws = per_class(t)
    return 1.0 - (1.0 - t) ** ws

  def dalpha(t):
    t, ws = per_class(t)
    return ws * jnp.maximum(1.0 - t, TINY) ** (ws - 1.0)

  return Schedule(alpha, dalpha, None)


@SCHEDULES.register("geometric")
def geometric_schedule(sigma_min=1e-5, sigma_max=20.0) -> Schedule:
  log_min, log_max = math.log(sigma_min), math.log(sigma_max)
  e0, e1 = math.exp(-sigma_max), math.exp(-sigma_min)
  sigma = lambda t: jnp.exp(t * log_min + (1.0 - t) * log_max)

  def inverse(a):
    s = -jnp.log(e0 + a * (e1 - e0))
    return jnp.clip((jnp.log(jnp.maximum(s, TINY)) - log_max) / (log_min - log_max), 0, 1)

  return Schedule(lambda t: (jnp.exp(-sigma(t)) - e0) / (e1 - e0),
                  lambda t: jnp.exp(-sigma(t)) * sigma(t) * (log_max - log_min) / (e1 - e0),
                  inverse)


@dataclasses.dataclass(frozen=True)
class MaskingPath:
  """The masking process; see the module docstring.

  Attributes:
    name: the schedule's registry name.
    vocab_size: V, the number of real tokens (ids 0 .. V - 1).
    mask_id: the id of the mask (>= V).
    schedule: the `Schedule`.
    state_dependent: True for per-class exponents (alpha depends on the token).
  """
  name: str
  vocab_size: int
  mask_id: int
  schedule: Schedule
  state_dependent: bool = False

  @property
  def embedding_size(self) -> int:
    """Ids a model must embed: the real tokens and the mask."""
    return max(self.vocab_size, self.mask_id + 1)

  def alpha(self, t):
    """P(visible at t): shape t.shape, or t.shape + (V,) if state-dependent."""
    return self.schedule.alpha(jnp.asarray(t, jnp.float32))

  def rate(self, t):
    """alpha'(t) / (1 - alpha(t)), the NELBO weight (shape as `alpha`)."""
    t = jnp.asarray(t, jnp.float32)
    return self.schedule.dalpha(t) / jnp.maximum(1.0 - self.schedule.alpha(t), TINY)

  def time_at_alpha(self, a):
    """The t with alpha(t) = a (state-independent schedules)."""
    self.require_state_independent("time_at_alpha")
    return self.schedule.inverse(jnp.asarray(a, jnp.float32))

  def require_state_independent(self, who: str):
    if self.state_dependent:
      raise ConfigError(f"{who} needs a state-independent schedule (one alpha for every "
                        "token); this path has per-class exponents. Use a scalar "
                        "path.exponent.")

  def token_alpha(self, t, tokens):
    """alpha_{x}(t) for each token: t () or (B,), tokens (B, L) -> (B, L)."""
    t = jnp.asarray(t, jnp.float32)
    t = t.reshape(t.shape + (1,) * (tokens.ndim - t.ndim))
    if not self.state_dependent:
      return jnp.broadcast_to(self.alpha(t), tokens.shape)
    per_class = self.alpha(t)  # (B, 1, V) or (1, 1, V)
    return jnp.take_along_axis(jnp.broadcast_to(per_class, tokens.shape + per_class.shape[-1:]),
                               tokens[..., None], -1)[..., 0]

  def sample(self, key, t, x0, x1):
    """x_t: each token of x1 (B, L) stays with probability alpha_{x1}(t), else becomes the
    mask. x0 (the all-mask source) is ignored and may be None."""
    del x0
    visible = jax.random.uniform(key, x1.shape) < self.token_alpha(t, x1)
    return jnp.where(visible, x1, self.mask_id).astype(jnp.int32)

  def source(self, shape):
    """The t = 0 state: all masked, int32 of `shape`."""
    return jnp.full(shape, self.mask_id, jnp.int32)

  # ----- the path protocol (diffjax.core.PathProtocol) -----
  @property
  def one_sided(self) -> bool:
    """True: the source is the process's own (every token masked)."""
    return True

  @property
  def gaussian(self) -> None:
    """None: tokens have no Gaussian view."""
    return None

  def source_sample(self, key, shape, dtype=jnp.int32):
    """The all-mask sequence of `shape` (the source is a point mass; key is unused)."""
    del key
    return self.source(shape).astype(dtype)

  def source_log_prob(self, x):
    """(B, L) -> (B,): 0 for the all-mask sequence, -inf for any other."""
    return jnp.where(jnp.all(self.is_masked(x), -1), 0.0, -jnp.inf)

  def is_masked(self, x):
    return x == self.mask_id


@PATHS.register("masked")
def masking_path(schedule: str = "linear", *, vocab_size: Optional[int] = None,
                 mask_id: Optional[int] = None, **options) -> MaskingPath:
  """Builds the masking process with the schedule registered as `schedule` (linear,
  cosine, polynomial with `exponent` (a number, or V per-class numbers), geometric with
  `sigma_min`, `sigma_max`) over `vocab_size` real tokens (the pipeline passes the data's,
  `DataSpec.vocab_size`). mask_id defaults to vocab_size."""
  if vocab_size is None:
    raise ConfigError("The masked path needs vocab_size, the number of real tokens (token "
                      "data give it: diffjax.pipeline.DataSpec(vocab_size=V)).")
  if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
    raise ConfigError(f"vocab_size must be an integer >= 1; got {vocab_size!r}.")
  mask_id = vocab_size if mask_id is None else int(mask_id)
  if mask_id < vocab_size:
    raise ConfigError(f"mask_id {mask_id} collides with a real token (ids 0..{vocab_size - 1}"
                      f"); use an id >= vocab_size, e.g. {vocab_size}.")
  if schedule not in SCHEDULES:
    raise ConfigError(f"Unknown masking schedule {schedule!r}; valid: {SCHEDULES.names()}.")
  state_dependent = False
  if "exponent" in options:
    if schedule != "polynomial":
      raise ConfigError(f"exponent is an option of the polynomial schedule, not {schedule!r}.")
    exponent = options["exponent"]
    if isinstance(exponent, (list, tuple)):
      if len(exponent) != vocab_size:
        raise ConfigError(f"A state-dependent schedule needs one exponent per token class "
                          f"({vocab_size}); got {len(exponent)}.")
      options = dict(options, exponent=tuple(float(e) for e in exponent))
      state_dependent = True
      values = options["exponent"]
    else:
      values = (float(exponent),)
    if min(values) <= 0:
      raise ConfigError(f"Polynomial exponents must be > 0; got {min(values)}.")
  try:
    built = SCHEDULES.get(schedule)(**options)
  except TypeError as e:
    raise ConfigError(f"Bad options {sorted(options)} for the {schedule!r} schedule: "
                      f"{e}.") from None
  return MaskingPath(schedule, vocab_size, mask_id, built, state_dependent)


masking_path.models_tokens = True  # Declared for families of token data.

