"""Image sample-quality metrics: Fréchet distances in a feature space, class accuracy.

The Fréchet distance between Gaussians N(mu1, S1) and N(mu2, S2) is

    ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))

(Dowson & Landau 1982; as FID in Heusel et al., "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", NeurIPS 2017, section 4). FID uses Inception-v3
features: `inception_fid` computes it from InceptionV3 weights the user supplies as a local file
(`diffjax.inception`; never downloaded). Offline, diffjax also uses the penultimate features of a
small classifier it trains itself on the 8x8 digits (`digits_frechet_distance`): a PROXY,
comparable only with itself.

Images follow the diffjax convention: (N, H, W, C) floats in [-1, 1].
"""
import dataclasses
import functools
import os
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffjax import inception, restoration
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.registry import Registry
from diffjax.train import fit


def feature_statistics(features):
  """(N, D) features -> (mean (D,), covariance (D, D)) in float64."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or len(f) < 2:
    raise ValueError(f"Expected (N, D) features with N >= 2; got shape {f.shape}.")
  return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(s):
  w, v = np.linalg.eigh((s + s.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); see the module docstring.

  tr((S1 S2)^(1/2)) is computed as tr((A S2 A)^(1/2)) with A = S1^(1/2): A S2 A is similar
  to S1 S2 and symmetric positive semi-definite, so its square root comes from a symmetric
  eigendecomposition in float64 (no complex parts, no ill-conditioned general sqrtm).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
  a = _psd_sqrt(s1)
  cross = np.linalg.eigvalsh((a @ s2 @ a + (a @ s2 @ a).T) / 2)
  trace_sqrt = np.sum(np.sqrt(np.clip(cross, 0, None)))
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def frechet_distance_from_features(features1, features2):
  """Fréchet distance between the Gaussian fits of two (N, D) feature sets."""
  return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


class DigitsMLP(nn.Module):
  """(N, 8, 8, 1) -> (logits (N, 10), penultimate features (N, feature_dim)).

  A multilayer perceptron rather than a CNN: on 8x8 inputs it is as accurate, and XLA's
  CPU convolution gradients would make training take minutes instead of seconds.
  """
  hidden_dim: int = 256
  feature_dim: int = 64
  activation: Callable = nn.relu   # e.g. EluCD's softplus smoothing (diffjax.guidance).

  @nn.compact
  def __call__(self, x):
    h = self.activation(nn.Dense(self.hidden_dim)(x.reshape(x.shape[0], -1)))
    features = self.activation(nn.Dense(self.feature_dim)(h))
    return nn.Dense(10)(features), features


def _to_8x8(images):
  """(N, 8k, 8k, 1) -> (N, 8, 8, 1) by averaging k x k blocks (undoes nearest upsampling)."""
  images = jnp.asarray(images, jnp.float32)
  n, h, w, c = images.shape
  if h != w or h % 8 or c != 1:
    raise ValueError(f"Expected (N, 8k, 8k, 1) digit images; got {images.shape}. Crop "
                     "padded digits back to their 8k x 8k centre first.")
  k = h // 8
  return images.reshape(n, 8, k, 8, k, 1).mean(axis=(2, 4))


@dataclasses.dataclass(frozen=True)
class DigitsClassifier:
  """A trained DigitsMLP. Images: (N, 8k, 8k, 1) in [-1, 1] (nearest-upsampled allowed)."""
  params: Any
  feature_dim: int = 64

  @functools.cached_property
  def _apply(self):
    module = DigitsMLP(feature_dim=self.feature_dim)
    return jax.jit(lambda p, x: module.apply({"params": p}, x))

  def logits(self, images) -> np.ndarray:
    """(N, 10) class logits."""
    return np.asarray(self._apply(self.params, _to_8x8(images))[0])

  def features(self, images) -> np.ndarray:
    """(N, feature_dim) penultimate features."""
    return np.asarray(self._apply(self.params, _to_8x8(images))[1])

  def accuracy(self, images, labels) -> float:
    return float(np.mean(np.argmax(self.logits(images), -1) == np.asarray(labels)))


def train_digits_classifier(seed=0, num_steps=1000, batch_size=128, learning_rate=3e-3,
                            feature_dim=64) -> DigitsClassifier:
  """Trains DigitsMLP on the digits "train" split (1497 images) with Adam by
  `diffjax.train.fit` (seconds on a CPU, no workdir). Inputs are freshly dequantised every
  step, so the classifier sees the same kind of continuous images that models are trained
  on."""
  images, labels = digits_arrays("train")
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels)
  module = DigitsMLP(feature_dim=feature_dim)

  def loss(params, batch, key):
    del batch  # Drawn here, from the step's key.
    k_idx, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_idx, (batch_size,), 0, images.shape[0])
    noise = jax.random.uniform(k_noise, (batch_size, 8, 8, 1))
    x = 2 * (images[idx] + noise) / DIGITS_NUM_LEVELS - 1
    logits, _ = module.apply({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels[idx]).mean()

  init = lambda key: module.init(key, jnp.zeros((1, 8, 8, 1)))["params"]
  state = fit(loss, optax.adam(learning_rate), init, num_steps=num_steps,
              key=jax.random.PRNGKey(seed), ema_decay=None, steps_per_call=num_steps)
  return DigitsClassifier(state.params, feature_dim)


@functools.lru_cache(maxsize=2)
def digits_classifier(seed=0) -> DigitsClassifier:
  """The default trained digits classifier (trained once per process and seed)."""
  return train_digits_classifier(seed)


def digits_reference_images(split="test"):
  """(N, 8, 8, 1) held-out real digits in [-1, 1] (bin centres) for reference statistics."""
  images, labels = digits_arrays(split)
  return dequantize(images, DIGITS_NUM_LEVELS), labels


def digits_frechet_distance(samples, reference, classifier=None):
  """PROXY Fréchet distance between image sets (N, 8k, 8k, 1) and (M, 8k, 8k, 1) in the
  penultimate features of the digits classifier (default: `digits_classifier()`).

  Not FID: the feature space is a small MLP classifier trained by diffjax on the 8x8 digits, so the
  values compare models on the digits only.
  """
  classifier = classifier or digits_classifier()
  return frechet_distance_from_features(classifier.features(samples),
                                        classifier.features(reference))


def digits_class_accuracy(samples, labels, classifier=None):
  """Fraction of class-conditional samples (N, 8k, 8k, 1) that the digits classifier
  assigns to the class (N,) they were generated for."""
  return (classifier or digits_classifier()).accuracy(samples, labels)


# Metrics a dataset offers for its samples: name -> fn(images (N, H, W, C) in [-1, 1],
# labels (N,) or None) -> {metric: float}. Datasets without an entry get none.
DATASET_METRICS = Registry("dataset sample metrics")


@DATASET_METRICS.register("digits")
def digits_sample_metrics(images, labels=None):
  """The digits' proxy Fréchet distance to the test split and, for class-conditional
  samples, the digits classifier's accuracy on them."""
  reference, _ = digits_reference_images("test")
  values = {"digits_frechet_proxy": float(digits_frechet_distance(images, reference))}
  if labels is not None:
    values["digits_class_accuracy"] = float(digits_class_accuracy(images, labels))
  return values


def dataset_metrics(name, images, labels=None):
  """The metrics dataset `name` offers for samples (`DATASET_METRICS`), or {}."""
  if name not in DATASET_METRICS:
    return {}
  return DATASET_METRICS.get(name)(images, labels)


@functools.lru_cache(maxsize=1)
def _cached_inception_weights(path):
  return inception.load_inception_weights(path)


def inception_weights(weights_path):
  """Validated InceptionV3 params from a local .npz/.pth file (cached for the last path
  read), or `weights_path` itself if it already is a params mapping."""
  if isinstance(weights_path, Mapping):
    return weights_path
  return _cached_inception_weights(os.path.abspath(os.fspath(weights_path)))


def inception_features(images, weights_path, batch_size=50):
  """(N, H, W, C) images in [-1, 1] (C = 1 or 3) -> (N, 2048) InceptionV3 pool3 features."""
  return inception.inception_features(images, inception_weights(weights_path), batch_size)


def inception_statistics(images, weights_path, batch_size=50):
  """(N, H, W, C) images in [-1, 1] (C = 1 or 3, N >= 2) -> (mu (2048,), sigma (2048, 2048))
  of their InceptionV3 pool3 features, in float64."""
  return feature_statistics(inception_features(images, weights_path, batch_size))


def frechet_distance_to_statistics(features, mu, sigma):
  """Fréchet distance between the Gaussian fit of (N, D) features and N(mu, sigma).

  Equals `frechet_distance(*feature_statistics(features), mu, sigma)`. For N <= D it works in
  sample space, O(N D^2) instead of O(D^3): with X the centred features, S1 = X^T X / (N - 1)
  and the nonzero eigenvalues of S1 sigma are those of the N x N PSD matrix
  X sigma X^T / (N - 1), so tr((S1 sigma)^(1/2)) is the sum of their square roots.
  """
  mu1, s1 = feature_statistics(features)
  if len(features) > len(mu1):
    return frechet_distance(mu1, s1, mu, sigma)
  x = np.asarray(features, np.float64) - mu1
  sigma = np.asarray(sigma, np.float64)
  small = x @ sigma @ x.T / (len(x) - 1)
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0, None)))
  return float(np.sum((mu1 - np.asarray(mu, np.float64)) ** 2) + np.trace(s1)
               + np.trace(sigma) - 2 * trace_sqrt)


def save_reference_statistics(path, mu, sigma):
  """Saves reference statistics (mu (D,), sigma (D, D)) to an .npz with arrays mu, sigma."""
  mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
  if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
    raise ValueError(f"Expected mu (D,) and sigma (D, D); got {mu.shape} and {sigma.shape}.")
  np.savez(path, mu=mu, sigma=sigma)


def load_reference_statistics(path):
  """(mu (D,), sigma (D, D)) from an .npz written by `save_reference_statistics` (pytorch-fid's
  precomputed .npz statistics use the same names)."""
  with np.load(os.fspath(path)) as data:
    missing = {"mu", "sigma"} - set(data.files)
    if missing:
      raise ValueError(f"{path} lacks the arrays {sorted(missing)}; it holds {data.files}. "
                       "Write reference statistics with save_reference_statistics.")
    mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
  if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
    raise ValueError(f"{path}: expected mu (D,) and sigma (D, D); got {mu.shape} and "
                     f"{sigma.shape}.")
  return mu, sigma


def inception_fid(samples, reference, weights_path, batch_size=50):
  """Inception FID (Heusel et al. 2017) between samples (N, H, W, C) in [-1, 1] and a reference.

  reference: images (M, H', W', C'), a (mu, sigma) pair, or the path of an .npz of them
  (`save_reference_statistics`). weights_path: InceptionV3 weights the user downloaded
  (.npz or pytorch-fid's .pth, see `diffjax.inception`), or params already loaded.
  Unlike `digits_frechet_distance` (a proxy) this is the standard metric, though with
  the caveats of `diffjax.inception.resize_for_inception`; it is biased upwards for small N.
  """
  features = inception_features(samples, weights_path, batch_size)
  if isinstance(reference, (str, os.PathLike)):
    reference = load_reference_statistics(reference)
  elif not (isinstance(reference, tuple) and len(reference) == 2):
    reference = inception_statistics(reference, weights_path, batch_size)
  return frechet_distance_to_statistics(features, *reference)


def digits_scores(x, labels, name):
  """The real-digits classifier's and the pixel-space 1-NN's accuracy on samples x, and
  the proxy Fréchet distance to the test digits (diversity and quality: a guided sampler
  that sends every sample of a class to one image scores well on accuracy only)."""
  train, train_labels = digits_arrays("train")
  reference, _ = digits_reference_images("test")
  return {f"accuracy_{name}": digits_class_accuracy(x, labels),
          f"nn_accuracy_{name}": restoration.nearest_neighbour_accuracy(
              x, labels, dequantize(train, DIGITS_NUM_LEVELS), train_labels),
          f"frechet_proxy_{name}": float(digits_frechet_distance(x, reference))}
