"""Graphs as a pytree of two arrays: node features X and a weighted adjacency A.

A batch of graphs with at most N nodes is padded to N: `Graph(x (B, N, F), adj (B, N, N))`
with a node mask (B, N) (1 for a real node, 0 for padding). `Graph` is the state the
samplers integrate (`diffjax.solvers.integrate` runs pytree states) and what the score
networks predict. Node features are the one-hot degrees of GDSS's "deg" initialisation
("Score-based Generative Modeling of Graphs via the System of Stochastic Differential
Equations", Jo, Lee & Hwang, App. C.1). Padding stays zero: every array that enters or
leaves the diffusion is masked, and the adjacency noise is symmetric with a zero diagonal.
"""
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError


class Graph(NamedTuple):
  """x: (B, N, F) node features; adj: (B, N, N) symmetric adjacency (weighted while
  noisy)."""
  x: jax.Array
  adj: jax.Array


def check_adjacency(adj, index, max_nodes) -> np.ndarray:
  """The adjacency of graph `index` as an (n, n) 0/1 int8 array, or a ConfigError naming
  what is wrong: not square, larger than `max_nodes`, not symmetric, entries not 0/1 or a
  nonzero diagonal (self-loops)."""
  a = np.asarray(adj)
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ConfigError(f"Graph {index}: an adjacency must be a square (n, n) matrix; got "
                      f"shape {a.shape}.")
  if a.shape[0] > max_nodes:
    raise ConfigError(f"Graph {index} has {a.shape[0]} nodes, more than the configured "
                      f"maximum data.max_nodes={max_nodes}; raise data.max_nodes to at "
                      f"least {a.shape[0]}.")
  if not np.array_equal(a, a.T):
    i, j = np.argwhere(a != a.T)[0]
    raise ConfigError(f"Graph {index}: the adjacency is not symmetric (A[{i}, {j}] = "
                      f"{a[i, j]} but A[{j}, {i}] = {a[j, i]}); graphs are undirected.")
  if not np.isin(a, (0, 1)).all():
    bad = a[~np.isin(a, (0, 1))].flat[0]
    raise ConfigError(f"Graph {index}: adjacency entries must be 0 or 1; found {bad}.")
  if np.any(np.diagonal(a)):
    raise ConfigError(f"Graph {index}: the adjacency has self-loops (a nonzero "
                      "diagonal); give graphs without them.")
  return a.astype(np.int8)


def adjacency_batch(adjacencies: Sequence, max_nodes: int):
  """Checks and pads graphs: -> (adj (G, max_nodes, max_nodes) float32, mask (G, max_nodes)
  float32), node i of graph g real iff mask[g, i] = 1."""
  adjacencies = [check_adjacency(a, i, max_nodes) for i, a in enumerate(adjacencies)]
  adj = np.zeros((len(adjacencies), max_nodes, max_nodes), np.float32)
  mask = np.zeros((len(adjacencies), max_nodes), np.float32)
  for g, a in enumerate(adjacencies):
    n = a.shape[0]
    adj[g, :n, :n] = a
    mask[g, :n] = 1
  return adj, mask


def pad_adjacencies(graphs: Sequence, max_nodes: int):
  """0/1 (n_g, n_g) matrices -> (adjacency (G, max_nodes, max_nodes) int8, zero-padded;
  num_nodes (G,) int64), unchecked (see `adjacency_batch`)."""
  padded = np.zeros((len(graphs), max_nodes, max_nodes), np.int8)
  for g, a in enumerate(graphs):
    padded[g, :len(a), :len(a)] = a
  return padded, np.array([len(a) for a in graphs], np.int64)


def degree_features(adj, mask, num_features):
  """One-hot node degrees (B, N, num_features), zero on padding; a degree >= num_features
  is refused (it would have no feature)."""
  degrees = np.asarray(adj).sum(-1).astype(np.int64)
  if degrees.max(initial=0) >= num_features:
    raise ConfigError(f"A node has degree {degrees.max()}, which one-hot degree features "
                      f"of size data.num_features={num_features} cannot hold; use "
                      f"data.num_features >= {degrees.max() + 1}.")
  return np.eye(num_features, dtype=np.float32)[degrees] * np.asarray(mask)[..., None]


def pair_mask(mask):
  """(B, N) node mask -> (B, N, N): 1 on pairs of distinct real nodes (the entries of A
  that exist: no padding, no self-loops)."""
  n = mask.shape[-1]
  return mask[:, :, None] * mask[:, None, :] * (1 - jnp.eye(n, dtype=mask.dtype))[None]


def mask_graph(graph: Graph, mask) -> Graph:
  """Zeroes what is not part of a graph: padded node rows of x, and the diagonal and padded
  rows and columns of adj."""
  return Graph(graph.x * mask[..., None], graph.adj * pair_mask(mask))


def graph_noise(key, like: Graph, mask) -> Graph:
  """Standard normal noise in the graph space: i.i.d. on real nodes' features, and on the
  upper triangle of the adjacency mirrored below it (zero diagonal), zero on padding."""
  k_x, k_adj = jax.random.split(key)
  upper = jnp.triu(jax.random.normal(k_adj, like.adj.shape, like.adj.dtype), 1)
  noise = Graph(jax.random.normal(k_x, like.x.shape, like.x.dtype),
                upper + jnp.swapaxes(upper, -1, -2))
  return mask_graph(noise, mask)


def quantize(adj, mask, threshold=0.5) -> list:
  """Sampled adjacencies (B, N, N) -> a list of 0/1 int8 (n_b, n_b) matrices over each
  graph's real nodes, thresholded at `threshold` (GDSS's quantisation), zero diagonal."""
  adj, mask = np.asarray(adj), np.asarray(mask) > 0
  graphs = []
  for a, m in zip(adj, mask):
    a = (a[np.ix_(m, m)] >= threshold).astype(np.int8)
    np.fill_diagonal(a, 0)
    graphs.append(a)
  return graphs
