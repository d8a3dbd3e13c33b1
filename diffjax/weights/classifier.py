"""A small MLP classifier as plain arrays: the networks a weight zoo is made of.

Parameters are a tuple of (W (in, out), b (out,)) pairs, one per layer, ReLU between
layers and logits at the end; `layer_sizes` = (inputs, hidden..., classes). Every
function works on one network; `jax.vmap` trains or evaluates a zoo of them at once.
`fit_classifier` runs epochs of minibatch Adam on the cross-entropy: many epochs train a
zoo member, one epoch is the fine-tuning of "Diffusion-Based Neural Network Weights
Generation" (Soro et al., 2025, Sec. 4: generated weights as an initialisation).
"""
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import optax

from diffjax.train.state import create_train_state
from diffjax.train.step import make_train_step

Params = Tuple[Tuple[jax.Array, jax.Array], ...]


def init_classifier(key, layer_sizes: Sequence[int]) -> Params:
  """LeCun-normal weights (std 1 / sqrt(fan in)) and zero biases."""
  keys = jax.random.split(key, len(layer_sizes) - 1)
  return tuple((jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in), jnp.zeros(n_out))
               for k, n_in, n_out in zip(keys, layer_sizes[:-1], layer_sizes[1:]))


def classifier_logits(params: Params, x):
  """(N, inputs) features -> (N, classes) logits."""
  for i, (w, b) in enumerate(params):
    x = x @ w + b[None]
    if i < len(params) - 1:
      x = jax.nn.relu(x)
  return x


def classifier_accuracy(params: Params, x, y):
  """The share of the (N,) int labels y that the argmax of the logits gets right."""
  return jnp.mean(jnp.argmax(classifier_logits(params, x), -1) == y)


def fit_classifier(params: Params, key, x, y, *, epochs: int, batch_size: int,
                   learning_rate: float) -> Params:
  """`epochs` passes of minibatch Adam (`diffjax.train.make_train_step`) over
  (x (N, inputs), y (N,)) in a fresh random order each epoch; the last N mod batch_size
  examples of an epoch are skipped."""
  x, y = jnp.asarray(x), jnp.asarray(y)
  steps = x.shape[0] // batch_size

  def loss(p, key, shard, step, rows):
    del key, shard, step
    return optax.softmax_cross_entropy_with_integer_labels(
        classifier_logits(p, x[rows]), y[rows]).mean(), {}

  train_step = make_train_step(loss, optax.adam(learning_rate))

  def epoch(state, key):
    order = jax.random.permutation(key, x.shape[0])[:steps * batch_size]
    body = lambda state, rows: (train_step(state, rows, key)[0], None)
    return jax.lax.scan(body, state, order.reshape(steps, batch_size))[0], None

  state = create_train_state(lambda _: params, optax.adam(learning_rate), key)
  return jax.lax.scan(epoch, state, jax.random.split(key, epochs))[0].params
