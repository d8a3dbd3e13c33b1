"""Synthetic-domain alignment (SDA): the classifier is fine-tuned on class-conditional
samples of the diffusion model that went through the same projection as the test inputs,
so that training and test data live in one synthetic domain.

"Everything to the Synthetic: Diffusion-driven Test-time Adaptation via Synthetic-Domain
Alignment" (Guo et al., 2024, Sec. 3.2 and 3.3): (1) draw labelled synthetic data
(x_c, c) from the class-conditional model, (2) re-diffuse them with the unconditional
model by the same forward-noise-then-denoise projection DDA applies to test inputs
(`diffjax.safety.dda.project`), (3) fine-tune the source classifier on the projected
synthetic data (Mix of Synthetic and ... here: the synthetic set only, cross-entropy,
Adam through `diffjax.train.fit`), (4) classify DDA-projected test inputs with it.
"""
import jax
import jax.numpy as jnp
import optax

from diffjax.image_metrics import DigitsClassifier, DigitsMLP
from diffjax.train import fit


def classifier_loss(classifier: DigitsClassifier, images, labels, batch_size):
  """loss(params, batch, key): cross-entropy of a random batch of (images (N, 8, 8, 1),
  labels (N,)) under the DigitsMLP of `classifier`'s shape."""
  module = DigitsMLP(feature_dim=classifier.feature_dim)

  def loss(params, batch, key):
    del batch
    index = jax.random.randint(key, (batch_size,), 0, images.shape[0])
    logits, _ = module.apply({"params": params}, images[index])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels[index]).mean()

  return loss


def fine_tune_classifier(classifier: DigitsClassifier, images, labels, *, num_steps=300,
                         learning_rate=1e-3, batch_size=128, key) -> DigitsClassifier:
  """The classifier after num_steps Adam steps on (images, labels) from its parameters."""
  loss = classifier_loss(classifier, jnp.asarray(images), jnp.asarray(labels), batch_size)
  state = fit(loss, optax.adam(learning_rate), classifier.params, num_steps=num_steps,
              key=key, ema_decay=None, steps_per_call=num_steps)
  return DigitsClassifier(state.params, classifier.feature_dim)
