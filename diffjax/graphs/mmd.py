"""Graph-generation metrics: MMD between the degree, clustering-coefficient and 4-node
orbit-count statistics of reference and generated graphs, as GraphRNN's evaluation does
("GraphRNN: Generating Realistic Graphs with Deep Auto-regressive Models", You et al.,
Sec. 4.3) and GDSS reports them.

Per graph: the degree histogram (a pmf over 0, 1, ...), the histogram of the nodes'
clustering coefficients in 100 bins over [0, 1] (a pmf), and the mean over nodes of the 15
orbit counts (`diffjax.graphs.orbits`). Kernels:
  degree      Gaussian-EMD, k(p, q) = exp(-W1(p, q)^2 / (2 sigma^2)), sigma = 1, W1 the
              earth mover's distance with ground distance |i - j| between bins;
  clustering  Gaussian-EMD with sigma = 0.1 and ground distance |i - j| / 100 (bin width);
  orbit       Gaussian on the Euclidean distance of the mean orbit counts, sigma = 30.
On a line, W1 between pmfs is the L1 distance of their CDFs (times the ground unit), which
is what is computed here. The statistic is GraphRNN's biased estimate of the squared MMD,
mean k(X, X') + mean k(Y, Y') - 2 mean k(X, Y) over all pairs, diagonals included
(Gretton et al., "A Kernel Two-Sample Test", eq. 5); histograms of different lengths are
zero-padded to a common support. Graphs are 0/1 adjacency matrices.
"""
from typing import Callable, Dict, Sequence

import numpy as np

from diffjax.graphs.orbits import orbit_counts
from diffjax.registry import Registry

GRAPH_STATISTICS = Registry("graph statistic")


def degree_histogram(adj) -> np.ndarray:
  """Counts of nodes of degree 0, 1, ..., max degree (networkx's degree_histogram)."""
  return np.bincount(np.asarray(adj).sum(1).astype(np.int64))


def clustering_coefficients(adj) -> np.ndarray:
  """(n,) local clustering coefficients 2 T_v / (d_v (d_v - 1)), 0 where d_v < 2
  (Watts & Strogatz; networkx's clustering)."""
  a = (np.asarray(adj) > 0).astype(np.float64)
  triangles = np.einsum("ij,jk,ki->i", a, a, a) / 2
  d = a.sum(1)
  pairs = d * (d - 1) / 2
  return np.where(pairs > 0, triangles / np.maximum(pairs, 1), 0.0)


def _pad(vectors):
  width = max(len(v) for v in vectors)
  return np.stack([np.pad(np.asarray(v, np.float64), (0, width - len(v))) for v in vectors])


def _pmfs(histograms):
  h = _pad(histograms)
  return h / np.maximum(h.sum(1, keepdims=True), 1e-300)


def gaussian_emd_kernel(p, q, sigma=1.0, bin_width=1.0) -> np.ndarray:
  """(P, K), (Q, K) pmfs -> (P, Q) exp(-W1^2 / (2 sigma^2)), W1 = bin_width sum |CDF
  difference|."""
  cdf_p, cdf_q = np.cumsum(p, 1), np.cumsum(q, 1)
  w1 = bin_width * np.abs(cdf_p[:, None, :] - cdf_q[None, :, :]).sum(-1)
  return np.exp(-w1 ** 2 / (2 * sigma ** 2))


def gaussian_kernel(x, y, sigma=1.0) -> np.ndarray:
  """(P, K), (Q, K) -> (P, Q) exp(-|x - y|^2 / (2 sigma^2))."""
  d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
  return np.exp(-d2 / (2 * sigma ** 2))


def mmd_squared(x, y, kernel: Callable) -> float:
  """GraphRNN's biased squared MMD between samples x (P, K) and y (Q, K) (module
  docstring)."""
  return float(kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean())


def _joint(reference, generated, vectorise):
  """Common-support arrays for two lists of per-graph vectors."""
  both = _pad([vectorise(g) for g in list(reference) + list(generated)])
  return both[:len(reference)], both[len(reference):]


@GRAPH_STATISTICS.register("degree")
def degree_mmd(reference, generated) -> float:
  x, y = _joint(reference, generated, degree_histogram)
  return mmd_squared(_pmfs(x), _pmfs(y), gaussian_emd_kernel)


@GRAPH_STATISTICS.register("clustering")
def clustering_mmd(reference, generated, bins=100) -> float:
  hist = lambda g: np.histogram(clustering_coefficients(g), bins=bins, range=(0.0, 1.0))[0]
  x, y = _joint(reference, generated, hist)
  kernel = lambda p, q: gaussian_emd_kernel(p, q, sigma=0.1, bin_width=1.0 / bins)
  return mmd_squared(_pmfs(x), _pmfs(y), kernel)


@GRAPH_STATISTICS.register("orbit")
def orbit_mmd(reference, generated) -> float:
  mean_counts = lambda g: orbit_counts(g).sum(0) / max(len(g), 1)
  x, y = _joint(reference, generated, mean_counts)
  return mmd_squared(x, y, lambda a, b: gaussian_kernel(a, b, sigma=30.0))


def remove_isolated(adj) -> np.ndarray:
  """The graph without its isolated nodes (one node if none is left), as GDSS does before
  evaluating generated graphs."""
  adj = np.asarray(adj)
  keep = adj.sum(1) > 0
  if not keep.any():
    return np.zeros((1, 1), adj.dtype)
  return adj[np.ix_(keep, keep)]


def graph_mmd(reference: Sequence, generated: Sequence,
              statistics=("degree", "clustering", "orbit")) -> Dict[str, float]:
  """{statistic: squared MMD} between two lists of 0/1 adjacency matrices; isolated nodes
  of the generated graphs are dropped first."""
  generated = [remove_isolated(g) for g in generated]
  return {name: GRAPH_STATISTICS.get(name)(reference, generated) for name in statistics}


def graph_mmd_over_seeds(reference: Sequence, generated_sets: Sequence,
                         statistics=("degree", "clustering", "orbit")) -> Dict[str, tuple]:
  """{statistic: (mean, std)} of `graph_mmd` over several generated sets (one per seed);
  std is the population standard deviation over the sets."""
  values = [graph_mmd(reference, g, statistics) for g in generated_sets]
  return {name: (float(np.mean([v[name] for v in values])),
                 float(np.std([v[name] for v in values]))) for name in statistics}
