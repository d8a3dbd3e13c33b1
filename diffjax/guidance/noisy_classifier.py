"""A noise-aware classifier p_t(y | x_t), trained on the path's own noisy samples, for
classifier guidance.

"Diffusion Models Beat GANs on Image Synthesis" (Dhariwal & Nichol 2021, Sec. 4): a
classifier of noisy inputs x_t, trained by cross-entropy on x_t ~ p_t(. | x1) for data
(x1, y) at random times t, gives grad_x log p_t(y | x_t), which added to the unconditional
score (times a scale) steers sampling to class y (`classifier.classifier_guidance`; with
the exact classifier and scale 1 the guided score is the conditional one, tested on the
class-conditional Gaussian mixture). The network is the time-conditioned MLP of
`diffjax.models.mlp` with num_classes outputs on the flattened state; its activation is
pluggable (a smooth one such as silu or softplus gives smooth guidance gradients).

  classifier = noisy_classifier((8, 8, 1), num_classes=10, width=256, depth=3)
  loss, aux = noisy_classifier_loss(path, classifier.apply, params, key, x0, x1, labels)
  log_prob = classifier_log_prob(classifier.apply, params, labels)   # (x, t) -> (B,)
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffjax.errors import ConfigError
from diffjax.models.base import Model
from diffjax.models.mlp import ACTIVATIONS, TimeMLP


def noisy_classifier(data_shape, num_classes, width=256, depth=3, activation="silu",
                     time_dim=32) -> Model:
  """Model(init, apply): apply(params, x (B, *data_shape), t () or (B,)) -> (B, K) logits."""
  if not (isinstance(num_classes, int) and num_classes >= 2):
    raise ConfigError(f"A classifier needs num_classes >= 2; got {num_classes!r}.")
  for key, value in (("width", width), ("depth", depth), ("time_dim", time_dim)):
    if not (isinstance(value, int) and value >= 1):
      raise ConfigError(f"classifier.{key} must be an integer >= 1; got {value!r}.")
  ACTIVATIONS.get(activation)
  module = TimeMLP(out_dim=num_classes, width=width, depth=depth, activation=activation,
                   time_dim=time_dim)
  size = int(np.prod(data_shape))

  def init(key):
    return module.init(key, jnp.zeros((1, size)), jnp.zeros(()))["params"]

  def apply(params, x, t):
    return module.apply({"params": params}, x.reshape(x.shape[0], size), t)

  return Model(init, apply)


def noisy_classifier_loss(path, apply_fn, params, key, x0, x1, labels):
  """Cross-entropy of the classifier on x_t = path.sample(t, x0, x1) at t ~ U(0, 1) (one
  time per example): (mean loss, {"accuracy"})."""
  k_time, k_path = jax.random.split(key)
  t = jax.random.uniform(k_time, (x1.shape[0],))
  logits = apply_fn(params, path.sample(k_path, t, x0, x1), t)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def classifier_log_prob(apply_fn, params, labels):
  """(x, t) -> (B,) log p_t(y | x) of the target labels (B,), for `classifier_guidance`."""
  def log_prob(x, t):
    logits = jax.nn.log_softmax(apply_fn(params, x, t))
    return jnp.take_along_axis(logits, labels[:, None], -1)[:, 0]
  return log_prob
