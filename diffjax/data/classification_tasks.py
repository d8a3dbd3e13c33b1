"""A family of synthetic classification data sets (scikit-learn's make_classification),
the tasks of a weight zoo, and the data-set embedding that conditions weight generation.

Task i of seed s is `make_classification` with random_state s * 1000 + i: the same
number of features and classes for every task, so one MLP architecture fits them all,
but different informative directions, clusters and class layouts. Features are
standardised with the training split's statistics.

`dataset_embedding` follows "Diffusion-Based Neural Network Weights Generation" (Sec.
3.2) in conditioning on the data rather than on a task index: the (classes * E,) vector
of per-class means of the training features in a fixed random projection to E
dimensions (E = embed_dim), so that an unseen data set gets an embedding too.
"""
from typing import NamedTuple

import numpy as np


class ClassificationTask(NamedTuple):
  """x_train (N, F) float32, y_train (N,) int32, x_test (M, F), y_test (M,)."""
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def classification_task(seed: int, index: int, *, num_features=8, num_classes=3,
                        num_train=400, num_test=400) -> ClassificationTask:
  """Task `index` of the family of `seed` (module docstring)."""
  # scikit-learn is a dependency of the data side only: imported where used.
  from sklearn.datasets import make_classification  # pylint: disable=g-import-not-at-top
  x, y = make_classification(
      n_samples=num_train + num_test, n_features=num_features,
      n_informative=max(2, num_features * 5 // 8), n_redundant=0,
      n_classes=num_classes, n_clusters_per_class=2, class_sep=1.5,
      random_state=seed * 1000 + index)
  mean, std = x[:num_train].mean(0), x[:num_train].std(0) + 1e-6
  x = ((x - mean) / std).astype(np.float32)
  y = y.astype(np.int32)
  return ClassificationTask(x[:num_train], y[:num_train], x[num_train:], y[num_train:])


def dataset_embedding(x, y, num_classes: int, embed_dim: int = 4, seed: int = 0):
  """(num_classes * embed_dim,) per-class means of x (N, F) projected by a fixed
  Gaussian (F, embed_dim) / sqrt(F) matrix (the same for every task of one `seed`)."""
  projection = np.random.default_rng(seed).normal(size=(x.shape[1], embed_dim))
  z = x @ projection / np.sqrt(x.shape[1])
  return np.concatenate([z[y == c].mean(0) if np.any(y == c) else np.zeros(embed_dim)
                         for c in range(num_classes)]).astype(np.float32)
