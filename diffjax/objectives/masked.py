"""Masked diffusion objectives: the continuous-time NELBO with the SUBS parametrisation, and
RADD's lambda-DCE and k-DCE estimators of the same bound.

The network sees x_t (B, L) (masked positions hold the mask id) and returns logits (B, L, V)
over the V real tokens only: it never predicts the mask, and unmasked positions are copied
(SUBS, "Simple and Effective Masked Diffusion Language Models", Sahoo et al., section 3.2),
so only masked positions enter a loss. With mu = softmax(logits), in diffjax time (t = 0
all masked, t = 1 clean), per sequence x:

  "nelbo" (t-DCE)  NELBO(x) = int_0^1 E_{x_t}[ sum_{masked l} w_{x_l}(t) (-log mu_l[x_l])
                                + sum_{masked l} (sum_v w_v(t) mu_l[v] - w_{x_l}(t)) ] dt,
                   w_v = alpha_v' / (1 - alpha_v). For a state-independent schedule the second
                   term vanishes and this is MDLM's eq. 10 / MD4's eq. 5 (with alpha = t: the
                   masked cross-entropy weighted by 1 / (1 - t)); the general form is MD4's
                   GenMD4 bound (section 5).
  "lambda_dce"     E_{lambda ~ U(0, 1]}[ (1 / lambda) sum_{masked l} -log mu_l[x_l] ], each
                   token masked with probability lambda ("Your Absorbing Discrete Diffusion
                   Secretly Models the Conditional Distributions of Clean Data", Ou et al.
                   (RADD), eq. 12): the same bound with the time integrated out.
  "k_dce"          E_{k ~ U{1..L}}[ (L / k) sum_{masked l} -log mu_l[x_l] ], a uniformly random
                   set of k positions masked (RADD eq. 13): the any-order autoregressive loss.

All three equal -log p(x) for the exact denoiser (tested on an enumerable language). The
loss is the batch mean of the per-sequence estimate divided by L (nats per token). Times
(lambda, k) are drawn "uniform", "antithetic" (t and 1 - t) or "low_discrepancy"
((u + i / B) mod 1, "Variational Diffusion Models", Kingma et al., appendix I.2).
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Fields, Predictions
from diffjax.errors import ConfigError
from diffjax.objectives.base import OBJECTIVES

ESTIMATORS = ("nelbo", "lambda_dce", "k_dce")
TIME_SAMPLING = ("uniform", "antithetic", "low_discrepancy")


class TokenObjective(NamedTuple):
  """An objective on token sequences: `loss` and `fields` as every `Objective`, and

  sequence_nll(apply_fn, params, key, x1, cond=None, num_samples=16) -> (B,) nats: the
    negative log-likelihood of x1 (B, L), exact for the autoregressive model, a Monte
    Carlo estimate of an upper bound (the NELBO) over num_samples draws for masked
    diffusion;
  causal: True when the network must be causal (attend only to earlier positions).
  """
  loss: Callable[..., Any]
  fields: Callable[..., Any]
  sequence_nll: Callable[..., Any]
  causal: bool = False


def token_objective(factory):
  """Declares an `OBJECTIVES` factory as one that models token sequences on the masked
  path (`models_tokens`): families of token data offer exactly these."""
  factory.models_tokens = True
  return factory


def token_objective_names():
  """The registered objectives declared with `token_objective`."""
  return tuple(n for n in OBJECTIVES.names()
               if getattr(OBJECTIVES.get(n), "models_tokens", False))


def require_masking_path(path, who: str):
  """Refuses a path without a mask (a continuous path) for a token objective."""
  if getattr(path, "mask_id", None) is None:
    raise ConfigError(f"{who} models tokens on the masked path (path.name='masked'); got "
                      f"the path {getattr(path, 'name', path)!r}.")


def unit_times(key, n: int, how: str = "low_discrepancy"):
  """(n,) times in [0, 1) drawn `how` (see the module docstring)."""
  u = jax.random.uniform(key, (n,) if how == "uniform" else ())
  if how == "uniform":
    return u
  if how == "low_discrepancy":
    return jnp.mod(u + jnp.arange(n, dtype=jnp.float32) / n, 1.0)
  if how == "antithetic":
    half = jax.random.uniform(key, ((n + 1) // 2,))
    return jnp.concatenate([half, 1.0 - half])[:n] * (1.0 - 1e-7)
  raise ConfigError(f"Unknown time sampling {how!r}; valid: {TIME_SAMPLING}.")


def token_cross_entropy(logits, x1):
  """-log softmax(logits)[x1]: logits (B, L, V), x1 (B, L) -> (B, L)."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
  return -jnp.take_along_axis(log_probs, x1[..., None], -1)[..., 0]


def _uniform_subset(key, shape, k):
  """(B, L) bool masks with exactly k[b] True entries at uniformly random positions."""
  ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key, shape), -1), -1)
  return ranks < k[:, None]


def sequence_losses(path, estimator, apply_fn, params, key, x1, cond=None,
                    time_sampling="low_discrepancy"):
  """(B,) per-sequence estimates (nats) of the NELBO of x1 (B, L) by `estimator`."""
  batch, length = x1.shape
  k_time, k_mask = jax.random.split(key)
  u = unit_times(k_time, batch, time_sampling)
  if estimator == "nelbo":
    t = u
    xt = path.sample(k_mask, t, None, x1)
  elif estimator == "lambda_dce":
    lam = 1.0 - u  # in (0, 1]: the masking probability
    masked = jax.random.uniform(k_mask, x1.shape) < lam[:, None]
    xt = jnp.where(masked, path.mask_id, x1)
    t = path.time_at_alpha(1.0 - lam)
  else:  # k_dce
    k = jnp.minimum(jnp.floor(u * length).astype(jnp.int32) + 1, length)
    xt = jnp.where(_uniform_subset(k_mask, x1.shape, k), path.mask_id, x1)
    t = path.time_at_alpha(1.0 - k / length)
  logits = apply_fn(params, xt, t, cond)
  masked = (xt == path.mask_id).astype(jnp.float32)
  ce = token_cross_entropy(logits, x1)
  if estimator == "lambda_dce":
    return jnp.sum(masked * ce, -1) / lam
  if estimator == "k_dce":
    return jnp.sum(masked * ce, -1) * length / k
  rates = path.rate(t)
  if not path.state_dependent:
    return rates * jnp.sum(masked * ce, -1)
  rates = rates[:, None, :]  # (B, 1, V)
  rate_x = jnp.take_along_axis(jnp.broadcast_to(rates, logits.shape), x1[..., None], -1)[..., 0]
  expected_rate = jnp.sum(rates * jax.nn.softmax(logits.astype(jnp.float32), -1), -1)
  return jnp.sum(masked * (rate_x * ce + expected_rate - rate_x), -1)


def check_estimator(path, estimator, time_sampling="low_discrepancy"):
  if estimator not in ESTIMATORS:
    raise ConfigError(f"Unknown masked-diffusion estimator {estimator!r}; valid: "
                      f"{ESTIMATORS}.")
  if time_sampling not in TIME_SAMPLING:
    raise ConfigError(f"Unknown time sampling {time_sampling!r}; valid: {TIME_SAMPLING}.")
  if estimator != "nelbo":
    path.require_state_independent(f"The {estimator} estimator")


@OBJECTIVES.register("masked_diffusion")
@token_objective
def masked_diffusion(path, estimator: str = "nelbo",
                     time_sampling: str = "low_discrepancy") -> TokenObjective:
  """The masked-diffusion NELBO on a `MaskingPath` (see the module docstring).

  loss(apply_fn, params, key, x0, x1, cond=None) -> (nats per token, aux): x0 is unused
  (the source is the all-mask sequence) and may be None; x1 (B, L) int tokens;
  apply_fn(params, x_t, t, cond) -> (B, L, V) logits.
  fields(apply_fn, params, cond=None) -> Fields with `logits` (also read as
  `next_token_logits`: with every later position masked they are the left-to-right
  conditionals). sequence_nll: `nelbo` with this estimator.
  """
  require_masking_path(path, "The masked_diffusion objective")
  check_estimator(path, estimator, time_sampling)

  def loss(apply_fn, params, key, x0, x1, cond=None):
    del x0
    per_sequence = sequence_losses(path, estimator, apply_fn, params, key, x1, cond,
                                   time_sampling)
    per_token = jnp.mean(per_sequence) / x1.shape[1]
    return per_token, {"nelbo_per_token": per_token}

  def fields(apply_fn, params, cond=None):
    def evaluate(x, t):
      logits = apply_fn(params, x, t, cond)
      return Predictions(logits=logits, next_token_logits=logits)
    return Fields(evaluate, ("logits", "next_token_logits"))

  def sequence_nll(apply_fn, params, key, x1, cond=None, num_samples=16):
    return nelbo(path, apply_fn, params, key, x1, cond, estimator=estimator,
                 num_samples=num_samples)

  return TokenObjective(loss, fields, sequence_nll)


def discrete_time_nelbo(path, apply_fn, params, key, x1, cond=None, *, num_steps: int,
                        num_samples: int = 16):
  """(B,) NELBO estimates (nats) of x1 (B, L) for the num_steps-step reverse process on the
  uniform grid tau_i = i / T: a token still masked at tau_{i-1} is revealed at tau_i with
  probability w_i = (alpha(tau_i) - alpha(tau_{i-1})) / (1 - alpha(tau_{i-1})), drawn from the
  model's mu at x_{tau_{i-1}}, independently of the other tokens revealed in that step:

    NELBO_T(x) = sum_i E_{x_{tau_{i-1}}}[ w_i sum_{masked l} -log mu_l[x_l] ]

  ("Simplified and Generalized Masked Diffusion for Discrete Data", Shi et al., eq. 4; the
  prior and reconstruction terms vanish since alpha(0) = 0 and alpha(1) = 1). T = 1 is the
  model of independent tokens given nothing; as T grows the bound decreases to the
  continuous-time NELBO (`nelbo`). Each of num_samples draws picks one step i
  (low-discrepancy over the draws) and weighs it by T."""
  path.require_state_independent("discrete_time_nelbo")
  if num_steps < 1:
    raise ConfigError(f"num_steps must be >= 1; got {num_steps}.")
  batch = x1.shape[0]
  tiled = jnp.tile(x1, (num_samples, 1))
  tiled_cond = None if cond is None else jnp.tile(cond, (num_samples,) + (1,) * (cond.ndim - 1))
  k_step, k_mask = jax.random.split(key)
  step = jnp.minimum(jnp.floor(unit_times(k_step, tiled.shape[0]) * num_steps),
                     num_steps - 1)  # i - 1 in {0, ..., T - 1}
  t, t_next = step / num_steps, (step + 1) / num_steps
  xt = path.sample(k_mask, t, None, tiled)
  alpha, alpha_next = path.alpha(t), path.alpha(t_next)
  weight = num_steps * (alpha_next - alpha) / jnp.maximum(1.0 - alpha, 1e-12)
  logits = apply_fn(params, xt, t, tiled_cond)
  masked = (xt == path.mask_id).astype(jnp.float32)
  losses = weight * jnp.sum(masked * token_cross_entropy(logits, tiled), -1)
  return jnp.mean(losses.reshape(num_samples, batch), 0)


def nelbo(path, apply_fn, params, key, x1, cond=None, *, estimator="nelbo",
          num_samples: int = 16):
  """(B,) NELBO estimates of the sequences x1 (B, L) in nats, averaged over num_samples
  low-discrepancy draws each (for evaluation: bits per token = nelbo / (L ln 2))."""
  check_estimator(path, estimator)
  batch = x1.shape[0]
  tiled = jnp.tile(x1, (num_samples, 1))
  tiled_cond = None if cond is None else jnp.tile(
      cond, (num_samples,) + (1,) * (cond.ndim - 1))   # (B,) labels or (B, d) arrays.
  losses = sequence_losses(path, estimator, apply_fn, params, key, tiled, tiled_cond)
  return jnp.mean(losses.reshape(num_samples, batch), 0)
