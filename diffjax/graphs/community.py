"""The community-small graphs of GraphRNN / GDSS: two dense Erdős–Rényi communities joined
by a few bridge edges.

Each graph draws n uniformly from {min_nodes, ..., max_nodes} (12-20) and builds two
communities of c = n // 2 nodes (so 2c nodes: 12, 14, ..., 20), each G(c, p_intra = 0.7);
every one of the c^2 cross pairs becomes a bridge with probability 2 p_inter / c
(p_inter = 0.05), and a graph that drew no bridge gets one between the communities' first
nodes, so the two communities are always joined ("Score-based Generative Modeling of
Graphs via the System of Stochastic Differential Equations", Jo, Lee & Hwang, Sec. 4.1 and
their generator after Niu et al., "Permutation Invariant Graph Generation via Score-Based
Generative Modeling"). 100 graphs, split 80 / 20 into train and test.

Graphs are (n, n) symmetric 0/1 NumPy adjacency matrices with a zero diagonal.
"""
from typing import List, Tuple

import numpy as np

from diffjax.errors import ConfigError


def community_graph(rng: np.random.Generator, num_nodes: int, p_intra=0.7,
                    p_inter=0.05) -> np.ndarray:
  """One two-community graph on 2 (num_nodes // 2) nodes (module docstring)."""
  c = num_nodes // 2
  adj = np.zeros((2 * c, 2 * c), np.int8)
  for start in (0, c):
    block = np.triu(rng.random((c, c)) < p_intra, 1)
    adj[start:start + c, start:start + c] = block | block.T
  bridges = rng.random((c, c)) < 2 * p_inter / c
  if not bridges.any():
    bridges[0, 0] = True
  adj[:c, c:] = bridges
  adj[c:, :c] = bridges.T
  return adj


def community_small(num_graphs=100, seed=0, min_nodes=12, max_nodes=20, p_intra=0.7,
                    p_inter=0.05) -> List[np.ndarray]:
  """`num_graphs` community graphs with n ~ U{min_nodes..max_nodes} (module docstring)."""
  if not 4 <= min_nodes <= max_nodes:
    raise ConfigError(f"Community graphs need 4 <= min size <= max size (two communities "
                      f"of at least 2 nodes); got data.min_size={min_nodes}, "
                      f"data.max_size={max_nodes}.")
  rng = np.random.default_rng(seed)
  sizes = rng.integers(min_nodes, max_nodes + 1, num_graphs)
  return [community_graph(rng, int(n), p_intra, p_inter) for n in sizes]


def train_test_split(graphs, test_fraction=0.2, seed=0) -> Tuple[list, list]:
  """A seeded shuffle, then the first `test_fraction` of the graphs are the test split
  (20 of 100 for community-small) and the rest the training split."""
  order = np.random.default_rng(seed).permutation(len(graphs))
  num_test = int(round(test_fraction * len(graphs)))
  if not 0 < num_test < len(graphs):
    raise ConfigError(f"test_fraction={test_fraction} leaves an empty split of "
                      f"{len(graphs)} graphs.")
  return [graphs[i] for i in order[num_test:]], [graphs[i] for i in order[:num_test]]
