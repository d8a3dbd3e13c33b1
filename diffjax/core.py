"""The three contracts of diffjax: `Path`, `Fields` and `Stepper`.

This is the bottom layer: it imports no other diffjax module, and every other module builds
on it. Time runs over t in [0, 1]; t = 0 is the source (noise, or a bridge's first
marginal), t = 1 is the data. Arrays are batch-first; t is a scalar or a (B,) vector.

Path     x_t = a(t) x0 + b(t) x1 + gamma(t) z, z ~ N(0, I) ("Stochastic Interpolants: A
         Unifying Framework for Flows and Diffusions", Albergo, Boffi & Vanden-Eijnden,
         eq. 2.1). A one-sided path draws x0 from N(0, source_std^2 I) itself; with gamma = 0
         it is a Gaussian diffusion x_t = alpha(t) x1 + sigma(t) eps, and `path.gaussian`
         gives that view (alpha, sigma, log-SNR) to the samplers that need it.
         The path protocol (`PathProtocol`) is what the pipeline, objectives, fields and
         samplers read of any path, continuous or not: `name`; `sample(key, t, x0, x1)` ->
         x_t; `one_sided`, and for a one-sided path its own source `source_sample(key,
         shape)` and `source_log_prob(x)`; `gaussian` (a `GaussianView`, or None). The
         masking process for tokens (`diffjax.paths.masked.MaskingPath`, registered as the
         `masked` path) satisfies it: one-sided, its source the all-mask sequence, no
         Gaussian view. The interpolant members of `Path` (coefficients, their derivatives,
         `interpolate`, `conditional_velocity`, `has_noise`) are read only by the objectives
         and conversions of continuous paths, which refuse other paths.
Fields   a model's named predictions (velocity, score, data, noise, logits) at (x, t):
         `evaluate(x, t)` is one model evaluation returning every prediction it can give;
         conversions between them live in `diffjax.fields`, guidance maps fields to fields.
Stepper  an optax-style pair of pure functions: `init(x0, ts) -> state` and
         `step(fields, x, state, t, t_next, key) -> (x_next, state, nfe)`; the one driver
         `diffjax.solvers.integrate` runs any stepper over an increasing or decreasing grid.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Protocol, Tuple, runtime_checkable

import jax
import jax.numpy as jnp

ScalarFn = Callable[[jax.Array], jax.Array]

# Coefficients entering a division are floored here, so no formula divides by zero where a
# path reaches alpha = 0 or sigma = 0 at an endpoint.
TINY = 1e-12


def time_column(t, x):
  """Broadcasts t of shape () or (B,) against x of shape (B, ...)."""
  t = jnp.asarray(t, x.dtype)
  return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


def _jvp(fn, t):
  return jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]


def _zero(t):
  return jnp.zeros_like(t)


# ----------------------------------------------------------------------------------------
# Path


@runtime_checkable
class PathProtocol(Protocol):
  """What every consumer reads of a path (module docstring); `Path` and the masking
  process satisfy it. Shapes: x0, x1, x_t (B, ...); t () or (B,)."""
  name: str

  def sample(self, key, t, x0, x1): ...

  @property
  def one_sided(self) -> bool: ...

  def source_sample(self, key, shape, dtype=None): ...

  def source_log_prob(self, x): ...

  @property
  def gaussian(self) -> Optional["GaussianView"]: ...


@dataclasses.dataclass(frozen=True)
class Path:
  """x_t = a(t) x0 + b(t) x1 + gamma(t) z between a source (t = 0) and the data (t = 1).

  Attributes:
    name: the registry name (for messages and configs).
    a, b: scalar functions of t (shape () or (B,) -> same shape).
    gamma: the latent noise level, or None for gamma = 0 (a deterministic interpolant).
    da, db, dgamma: optional closed-form derivatives (default: `jax.jvp`).
    gamma_dgamma: optional closed form of gamma gamma', finite where gamma' is not.
    source_std: None for a two-sided path (any source); s for a one-sided path, whose source
      x0 ~ N(0, s^2 I) is the path's own latent noise.
  """
  name: str
  a: ScalarFn
  b: ScalarFn
  gamma: Optional[ScalarFn] = None
  da: Optional[ScalarFn] = None
  db: Optional[ScalarFn] = None
  dgamma: Optional[ScalarFn] = None
  gamma_dgamma: Optional[ScalarFn] = None
  source_std: Optional[float] = None

  def coefficients(self, t):
    """t: () or (B,) -> (a, b, gamma), each shaped like t."""
    t = jnp.asarray(t, jnp.float32)
    return self.a(t), self.b(t), (_zero if self.gamma is None else self.gamma)(t)

  def coefficient_derivatives(self, t):
    """t: () or (B,) -> (a', b', gamma'), each shaped like t."""
    t = jnp.asarray(t, jnp.float32)
    derivative = lambda fn, closed: closed(t) if closed is not None else _jvp(fn, t)
    dgamma = (_zero(t) if self.gamma is None
              else derivative(self.gamma, self.dgamma))
    return derivative(self.a, self.da), derivative(self.b, self.db), dgamma

  def gamma_gamma_derivative(self, t):
    """t: () or (B,) -> gamma(t) gamma'(t), finite on all of [0, 1]."""
    t = jnp.asarray(t, jnp.float32)
    if self.gamma is None:
      return _zero(t)
    if self.gamma_dgamma is not None:
      return self.gamma_dgamma(t)
    return self.gamma(t) * self.coefficient_derivatives(t)[2]

  @property
  def has_noise(self) -> bool:
    """True when gamma is not identically zero (a score can be learned from z)."""
    return self.gamma is not None

  def interpolate(self, t, x0, x1, z=None):
    """x_t for t: () or (B,), x0, x1, z: (B, ...); z may be None when gamma = 0."""
    a, b, g = (time_column(c, x1) for c in self.coefficients(t))
    xt = a * x0 + b * x1
    return xt if z is None or self.gamma is None else xt + g * z

  def sample(self, key, t, x0, x1):
    """x_t with a fresh z ~ N(0, I) (unused when gamma = 0)."""
    z = None if self.gamma is None else jax.random.normal(key, x1.shape, x1.dtype)
    return self.interpolate(t, x0, x1, z)

  def deterministic_velocity(self, t, x0, x1):
    """a' x0 + b' x1: the time derivative of the deterministic part of x_t."""
    da, db, _ = (time_column(c, x1) for c in self.coefficient_derivatives(t))
    return da * x0 + db * x1

  def conditional_velocity(self, t, x0, x1, z=None):
    """d/dt x_t = a' x0 + b' x1 + gamma' z: the regression target of the velocity."""
    v = self.deterministic_velocity(t, x0, x1)
    if z is None or self.gamma is None:
      return v
    return v + time_column(self.coefficient_derivatives(t)[2], x1) * z

  # ----- the source of a one-sided path -----
  @property
  def one_sided(self) -> bool:
    return self.source_std is not None

  def source_sample(self, key, shape, dtype=jnp.float32):
    """x0 ~ N(0, source_std^2 I) of a one-sided path."""
    self._needs_source("source_sample")
    return self.source_std * jax.random.normal(key, shape, dtype)

  def source_log_prob(self, x):
    """(B, ...) -> (B,): log N(x; 0, source_std^2 I) of a one-sided path."""
    self._needs_source("source_log_prob")
    flat = x.reshape(x.shape[0], -1)
    var = self.source_std ** 2
    return -0.5 * (jnp.sum(flat ** 2, -1) / var
                   + flat.shape[1] * jnp.log(2 * jnp.pi * var))

  def _needs_source(self, what):
    if self.source_std is None:
      raise ValueError(f"{what} needs a one-sided path (x0 ~ N(0, s^2 I)); {self.name!r} "
                       "takes any source: draw x0 from the source distribution instead.")

  @property
  def gaussian(self) -> Optional["GaussianView"]:
    """The Gaussian view alpha(t) x1 + sigma(t) eps of a one-sided path with gamma = 0
    (alpha = b, sigma = source_std a); None for any other path."""
    if self.source_std is None or self.gamma is not None:
      return None
    return GaussianView(self)


def require_gaussian(path: Path, who: str) -> "GaussianView":
  """path.gaussian, or a clear error naming `who` needs it."""
  view = path.gaussian
  if view is None:
    raise ValueError(f"{who} needs a Gaussian path (one-sided, gamma = 0: vp, sub_vp, "
                     f"iddpm_cosine, ve, edm, rectified_flow, ...); got {path.name!r}.")
  return view


@dataclasses.dataclass(frozen=True)
class GaussianView:
  """x_t = alpha(t) x1 + sigma(t) eps, eps ~ N(0, I), of a one-sided path.

  lambda(t) = log(alpha / sigma) is DPM-Solver's half log-SNR, increasing in t. The
  score-SDE time s = 1 - t and the SDE coefficients are documented in
  `diffjax.paths.gaussian`.
  """
  path: Path

  @property
  def name(self) -> str:
    return self.path.name

  def alpha(self, t):
    return self.path.b(jnp.asarray(t, jnp.float32))

  def sigma(self, t):
    return self.path.source_std * self.path.a(jnp.asarray(t, jnp.float32))

  def dalpha(self, t):
    return self.path.coefficient_derivatives(t)[1]

  def dsigma(self, t):
    return self.path.source_std * self.path.coefficient_derivatives(t)[0]

  def log_snr(self, t):
    return (jnp.log(jnp.maximum(self.alpha(t), TINY))
            - jnp.log(jnp.maximum(self.sigma(t), TINY)))

  def dlog_snr(self, t):
    """lambda'(t) = alpha'/alpha - sigma'/sigma >= 0."""
    return (self.dalpha(t) / jnp.maximum(self.alpha(t), TINY)
            - self.dsigma(t) / jnp.maximum(self.sigma(t), TINY))

  def time_at_log_snr(self, lam, iterations=48):
    """Inverts lambda(t) by bisection on [0, 1] (lambda is increasing): lam any shape."""
    lam = jnp.asarray(lam, jnp.float32)

    def body(_, bounds):
      low, high = bounds
      mid = 0.5 * (low + high)
      below = self.log_snr(mid) < lam
      return jnp.where(below, mid, low), jnp.where(below, high, mid)

    low, high = jax.lax.fori_loop(0, iterations, body,
                                  (jnp.zeros_like(lam), jnp.ones_like(lam)))
    return 0.5 * (low + high)

  def forward_sde(self, t):
    """(f, g) of the forward (noising) SDE dx = f x ds + g dW in score-SDE time s = 1 - t:
    f = -alpha'/alpha, g^2 = 2 sigma^2 lambda'(t) (Song et al., eq. 5 and Appendix B,
    written for any alpha, sigma)."""
    f = -self.dalpha(t) / jnp.maximum(self.alpha(t), TINY)
    g2 = 2 * self.sigma(t) ** 2 * self.dlog_snr(t)
    return f, jnp.sqrt(jnp.maximum(g2, 0.0))

  def marginal(self, t, x1):
    """Mean and std of x_t | x1 ~ N(alpha x1, sigma^2 I): t () or (B,), x1 (B, ...)."""
    return time_column(self.alpha(t), x1) * x1, time_column(self.sigma(t), x1)

  def reverse_sde_eps(self, t):
    """eps(t) = sigma^2 lambda': the diffusion level at which dX = (v + eps s) dt +
    sqrt(2 eps) dW is the reverse-time SDE of "Score-Based Generative Modeling through
    SDEs" (Song et al., eq. 6) written in diffjax time."""
    return self.sigma(t) ** 2 * self.dlog_snr(t)


# ----------------------------------------------------------------------------------------
# Fields

PREDICTION_NAMES = ("velocity", "score", "data", "noise", "logits", "next_token_logits")
# Predictions over a vocabulary: shaped like the state x (B, L) plus a last axis (V,).
TOKEN_PREDICTIONS = ("logits", "next_token_logits")


class Predictions(NamedTuple):
  """What a model says at (x, t); None where it says nothing.

  velocity  d x_t / dt of the marginal flow (the probability-flow ODE drift), (B, ...);
  score     grad log rho_t(x), (B, ...);
  data      E[x1 | x_t = x] (the denoiser), (B, ...);
  noise     E[eps | x_t = x] on a Gaussian path, E[z | x_t = x] on an interpolant, (B, ...);
  logits    unnormalised log-probabilities of the clean tokens given every visible token
            of x, (B, L, V) for x (B, L) (a masked model: valid in any order of reveal);
  next_token_logits  the same for position i given the tokens before it only, read where
            every position before i is known (left to right: a causal model gives only
            these; a masked model's logits are also these).
  """
  velocity: Any = None
  score: Any = None
  data: Any = None
  noise: Any = None
  logits: Any = None
  next_token_logits: Any = None


class Fields(NamedTuple):
  """A model's named predictions: `evaluate(x, t) -> Predictions` is one evaluation.

  `names` lists the predictions `evaluate` fills. Fields never hold parameters: they
  close over them. Unused predictions cost nothing under `jit` (dead code is removed).
  Build fields from separate functions with `Fields.of(velocity=f, score=g)`; from a
  network that predicts one quantity on a path with `diffjax.fields`.
  """
  evaluate: Callable[[Any, Any], Predictions]
  names: Tuple[str, ...]

  @classmethod
  def of(cls, **functions) -> "Fields":
    """Fields from functions f(x, t) keyed by prediction name (None entries are dropped)."""
    unknown = sorted(set(functions) - set(PREDICTION_NAMES))
    if unknown:
      raise ValueError(f"Unknown prediction name(s) {unknown}; valid: {PREDICTION_NAMES}.")
    names = tuple(n for n in PREDICTION_NAMES if functions.get(n) is not None)
    if not names:
      raise ValueError(f"Fields need at least one of {PREDICTION_NAMES}.")

    def evaluate(x, t):
      return Predictions(**{n: functions[n](x, t) for n in names})

    return cls(evaluate, names)

  def provides(self, *names) -> bool:
    return all(n in self.names for n in names)

  def require(self, names, who: str) -> "Fields":
    """Returns self, or raises naming the predictions `who` needs and these fields lack."""
    missing = [n for n in names if n not in self.names]
    if missing:
      raise ValueError(f"{who} needs the prediction(s) {missing}; these fields give "
                       f"{list(self.names)}. Train an objective that models them (e.g. "
                       "score_matching or an interpolant with a score head for 'score').")
    return self

  def __getattr__(self, name):
    # fields.velocity(x, t), fields.score(x, t), ...: one prediction from one evaluation.
    if name in PREDICTION_NAMES:
      self.require((name,), f"fields.{name}")
      return lambda x, t: getattr(self.evaluate(x, t), name)
    raise AttributeError(name)

  def map(self, transform, names=None) -> "Fields":
    """Fields whose evaluation is transform(x, t, Predictions) -> Predictions."""
    evaluate = self.evaluate
    return Fields(lambda x, t: transform(x, t, evaluate(x, t)),
                  self.names if names is None else tuple(names))


# ----------------------------------------------------------------------------------------
# Stepper


class Stepper(NamedTuple):
  """One sampler as an optax-style pair of pure functions.

  init(x0, ts) -> state: a NamedTuple (or any pytree) from the initial state x0 (B, ...)
    and the (N + 1,) grid ts;
  step(fields, x, state, t, t_next, key) -> (x_next, state, nfe): one step from scalar t to
    t_next (either direction); key is this step's PRNG key (None if the caller gave none);
    nfe is the number of `fields.evaluate` calls the step made (an int or int32 scalar);
  needs: the predictions `step` reads (checked against `fields.names` before tracing).
  """
  init: Callable[..., Any]
  step: Callable[..., Any]
  needs: Tuple[str, ...] = ("velocity",)


class NoState(NamedTuple):
  """The state of a stepper that keeps none."""


def stateless(step_fn, needs=("velocity",)) -> Stepper:
  """A Stepper from step_fn(fields, x, t, t_next, key) -> (x_next, nfe)."""
  def step(fields, x, state, t, t_next, key):
    x_next, nfe = step_fn(fields, x, t, t_next, key)
    return x_next, state, nfe
  return Stepper(lambda x0, ts: NoState(), step, tuple(needs))
