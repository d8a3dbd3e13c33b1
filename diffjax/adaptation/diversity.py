"""Diversity of generated samples in a feature space: the few-shot adaptation metrics.

An adapted model that memorises its ~10 training images is faithful to the target style
yet collapses onto copies of them. Two measures of what survives (features: (N, D), e.g.
the digits classifier's penultimate layer, `diffjax.image_metrics.DigitsClassifier`):

  mean_pairwise_distance   mean ||f_i - f_j|| over all pairs i < j;
  intra_cluster_distance   each sample joins the cluster of its nearest training image
                           (anchor); the mean pairwise distance inside each cluster of two or
                           more samples, averaged over those clusters ("intra-cluster
                           LPIPS" of "Few-shot Image Generation via Cross-domain
                           Correspondence", section 4, and of DomainStudio, with classifier
                           features in place of LPIPS). Copies of the anchors score 0.
"""
import numpy as np


def _pairwise(features):
  f = np.asarray(features, np.float64)
  return np.sqrt(np.maximum(((f[:, None] - f[None]) ** 2).sum(-1), 0.0))


def mean_pairwise_distance(features) -> float:
  """Mean Euclidean distance over the N (N - 1) / 2 pairs of (N, D) features (N >= 2)."""
  f = np.asarray(features)
  if f.ndim != 2 or len(f) < 2:
    raise ValueError(f"Expected (N, D) features with N >= 2; got shape {f.shape}.")
  d = _pairwise(f)
  return float(d[np.triu_indices(len(f), 1)].mean())


def nearest_anchor(features, anchors) -> np.ndarray:
  """(N,) index of the nearest of (K, D) anchors for each of (N, D) features."""
  f, a = np.asarray(features, np.float64), np.asarray(anchors, np.float64)
  return np.argmin(((f[:, None] - a[None]) ** 2).sum(-1), axis=1)


def intra_cluster_distance(features, anchors) -> float:
  """The mean over clusters (samples grouped by nearest anchor; clusters of >= 2 samples)
  of their mean pairwise distance; 0.0 when no cluster has two samples."""
  assignment = nearest_anchor(features, anchors)
  f = np.asarray(features)
  values = [mean_pairwise_distance(f[assignment == k]) for k in np.unique(assignment)
            if (assignment == k).sum() >= 2]
  return float(np.mean(values)) if values else 0.0
