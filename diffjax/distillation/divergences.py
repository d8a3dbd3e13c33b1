"""f-divergences of distribution-matching distillation and their weighting functions.

"One-step Diffusion Models with f-Divergence Distribution Matching" (Xu, Nie & Vahdat,
2025), Theorem 1: for D_f(p || q) = E_q[f(p / q)] between the teacher's noised marginal
p_t and the student's q_t, the generator's gradient is

  grad_theta D_f = E_t E_{z, eps}[ w(t) h(r) (s_q(x_t, t) - s_p(x_t, t)) dx_t / dtheta ],
  h(r) = f''(r) r^2,  r = p_t(x_t) / q_t(x_t),

with x_t the noised generator sample (the paper's eq. 6, its Table 1 for h). Reverse KL
(f = -log r) gives h = 1: variational score distillation / DMD. The ratio r is estimated
by a discriminator (`diffjax.distillation.discriminator`) and h normalised over the batch
(the paper's section 4.2), because h's scale changes by orders of magnitude with t and
during training.

  divergence = get_divergence("jensen_shannon")
  h = batch_normalized(divergence.weight(r))       # r (B,) -> (B,), mean 1
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Divergence:
  """An f-divergence D_f(p || q) = E_q[f(p / q)].

  Attributes:
    name: the registry name.
    f: the convex generator f(r), f(1) = 0, elementwise on r > 0.
    weight: h(r) = f''(r) r^2, elementwise on r > 0 (closed form).
    uses_ratio: False for reverse KL, whose weight is 1 whatever r: it needs no
      discriminator (and is the mode-seeking one).
  """
  name: str
  f: Callable[[jax.Array], jax.Array]
  weight: Callable[[jax.Array], jax.Array]
  uses_ratio: bool = True


DIVERGENCES = Registry("f-divergence")


def _register(divergence: Divergence):
  DIVERGENCES.register(divergence.name, divergence)


# r = p / q, p the teacher: reverse KL is KL(q || p), forward KL is KL(p || q).
_register(Divergence("reverse_kl", lambda r: -jnp.log(r), jnp.ones_like, uses_ratio=False))
_register(Divergence("forward_kl", lambda r: r * jnp.log(r), lambda r: r))
_register(Divergence(
    "jensen_shannon", lambda r: r * jnp.log(r) - (r + 1) * jnp.log((r + 1) / 2),
    lambda r: r / (r + 1)))
_register(Divergence("squared_hellinger", lambda r: (jnp.sqrt(r) - 1) ** 2,
                     lambda r: 0.5 * jnp.sqrt(r)))


def get_divergence(name: str) -> Divergence:
  """The registered divergence `name`; ConfigError (one line, the valid names) otherwise."""
  if name not in DIVERGENCES:
    raise ConfigError(f"method.divergence={name!r} is not a registered f-divergence; "
                      f"valid: {', '.join(DIVERGENCES.names())}.")
  return DIVERGENCES.get(name)


def batch_normalized(h):
  """h (B,) / mean(h): the weights' batch normalisation (f-distill, section 4.2), so that
  every divergence moves the generator at the scale of reverse KL (h = 1)."""
  return h / jnp.maximum(jnp.mean(h), 1e-12)


def binned_ratio(r, t, num_bins: int):
  """r (B,) divided by the mean of r over the batch members whose t (B,) in [0, 1] falls
  in the same of `num_bins` equal bins: the paper's per-time normalisation of the ratio
  (there a running average per bin; here the batch's, which needs no state across steps).
  num_bins = 0 returns r."""
  if not num_bins:
    return r
  bins = jnp.clip(jnp.floor(t * num_bins).astype(jnp.int32), 0, num_bins - 1)
  one_hot = jax.nn.one_hot(bins, num_bins, dtype=r.dtype)              # (B, K)
  means = (one_hot.T @ r) / jnp.maximum(one_hot.sum(0), 1.0)          # (K,)
  return r / jnp.maximum(means[bins], 1e-12)
