"""The density-ratio discriminator of f-distill: a classifier head on a network's features.

"One-step Diffusion Models with f-Divergence Distribution Matching" (Xu, Nie & Vahdat,
2025), section 4.2: the ratio r = p_t / q_t of the teacher's and the student's noised
marginals is read off a discriminator D(x_t, t) = sigmoid(logit) trained by binary cross
entropy to tell noised teacher samples (label 1) from noised generator samples (label 0).
At the optimum of the balanced problem logit = log p_t(x_t) - log q_t(x_t), so

  r = exp(logit)                                     (clipped, `ratio_from_logits`).

As in DMD2 and f-distill the classifier is a small head on the features of the "fake"
score network (its activations at one layer), which already encode x_t and t.

  features_of = layer_output(fake_apply, "Dense_2")     # any function calling a flax model
  (prediction, features) = features_of(params, x_t, t, labels)   # features (B, F)
  head = discriminator_head(width=128, depth=2)
  logits = head.apply(head_params, features)                     # (B,)
"""
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError


def _pool(features):
  """(B, ..., F) -> (B, F): the mean over token / pixel axes."""
  if features.ndim < 2:
    raise ValueError(f"Features must be batch-first with a feature axis; got {features.shape}.")
  return features.reshape(features.shape[0], -1, features.shape[-1]).mean(axis=1)


def layer_output(fn: Callable, layer: str) -> Callable:
  """fn(*args) -> (fn's value, (B, F) features): the output of the flax submodule whose
  path (names joined by "/", e.g. "Dense_2" of an MLP or "DiTBlock_3" of a DiT) is `layer`,
  recorded while `fn` runs (`flax.linen.intercept_methods`, so any function that calls a
  flax model's apply works, the network unchanged) and mean-pooled over its middle axes.

  Raises ConfigError naming the top-level submodules when `layer` was not called.
  """
  def wrapped(*args, **kwargs):
    found, seen = [], []

    def interceptor(next_fun, call_args, call_kwargs, context):
      out = next_fun(*call_args, **call_kwargs)
      if context.method_name == "__call__":
        path = "/".join(context.module.path)
        seen.append(path)
        if path == layer:
          found.append(out)
      return out

    with nn.intercept_methods(interceptor):
      value = fn(*args, **kwargs)
    if not found:
      top = sorted({p for p in seen if p and "/" not in p})
      raise ConfigError(f"discriminator.feature_layer={layer!r} is not a layer of the fake "
                        f"score network; its top-level layers: {', '.join(top)}.")
    return value, _pool(found[-1])
  return wrapped


class DiscriminatorHead(nn.Module):
  """(B, F) features -> (B,) logits: `depth` SiLU layers of `width`, then a linear map."""
  width: int = 128
  depth: int = 2

  @nn.compact
  def __call__(self, features):
    h = features
    for _ in range(self.depth):
      h = nn.silu(nn.Dense(self.width)(h))
    return nn.Dense(1)(h)[:, 0]


class Head(NamedTuple):
  init: Callable[[Any, int], Any]     # init(key, feature_dim) -> params
  apply: Callable[[Any, Any], Any]    # apply(params, features (B, F)) -> logits (B,)


def discriminator_head(width: int = 128, depth: int = 2) -> Head:
  """The discriminator's head as a pure (init, apply) pair."""
  for key, value in (("width", width), ("depth", depth)):
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
      raise ConfigError(f"discriminator.{key} must be an integer >= 1; got {value!r}.")
  module = DiscriminatorHead(width, depth)
  init = lambda key, dim: module.init(key, jnp.zeros((1, dim)))["params"]
  return Head(init, lambda params, features: module.apply({"params": params}, features))


def discriminator_loss(real_logits, fake_logits):
  """Binary cross entropy with teacher samples labelled 1 and generator samples 0:
  mean softplus(-logit_real) + mean softplus(logit_fake) (each (B,)). Minimised by
  logit = log p - log q (the two sets equally large)."""
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def ratio_from_logits(logits, max_log_ratio: float = 10.0):
  """r = p / q = exp(logit) (B,), with |log r| clipped at max_log_ratio: a confident
  discriminator early in training would otherwise give one sample all the weight."""
  return jnp.exp(jnp.clip(logits, -max_log_ratio, max_log_ratio))
