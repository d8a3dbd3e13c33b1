"""Node orbit counts of the graphlets with 2, 3 and 4 nodes (the 15 orbits 0-14 that ORCA
counts with `orca node 4`), by enumerating node subsets.

A graphlet is a connected induced subgraph; its orbits are its nodes up to automorphism
(Pržulj, "Biological network comparison using graphlet degree distribution", 2007, Fig. 1;
the numbering of Hočevar & Demšar, "A combinatorial approach to graphlet counting", 2014):
  0  an edge (the degree)
  1, 2    the path on 3 nodes: end, middle;            3  the triangle
  4, 5    the path on 4 nodes: end, inner;             6, 7  the star: leaf, centre
  8       the 4-cycle
  9-11    the paw (triangle with a pendant): pendant, triangle node of degree 2, joint
  12, 13  the diamond (K4 minus an edge): degree-2 node, degree-3 node
  14      K4.
Within every 4-node graphlet the orbit of a node is fixed by its degree inside the
graphlet, and the graphlet by its number of edges and degree sequence, so one pass over the
C(n, 3) + C(n, 4) subsets classifies everything (O(n^4): meant for the small graphs of
graph-generation benchmarks, n <= ~40).
"""
import itertools

import numpy as np

NUM_ORBITS = 15

# 4-node graphlets: (number of edges, sorted subgraph degrees) -> {degree: orbit}.
_FOUR_NODE = {
    (3, (1, 1, 2, 2)): {1: 4, 2: 5},          # path
    (3, (1, 1, 1, 3)): {1: 6, 3: 7},          # star
    (4, (2, 2, 2, 2)): {2: 8},                # 4-cycle
    (4, (1, 2, 2, 3)): {1: 9, 2: 10, 3: 11},  # paw
    (5, (2, 2, 3, 3)): {2: 12, 3: 13},        # diamond
    (6, (3, 3, 3, 3)): {3: 14},               # K4
}


def _subsets(n, k):
  if n < k:
    return np.zeros((0, k), np.int64)
  return np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), k)),
                     np.int64).reshape(-1, k)


def _subgraph_degrees(adj, subsets):
  """(S, k) node subsets -> (S, k) degrees inside the induced subgraphs."""
  block = adj[subsets[:, :, None], subsets[:, None, :]]        # (S, k, k)
  return block.sum(-1)


def orbit_counts(adj) -> np.ndarray:
  """(n, n) symmetric 0/1 adjacency -> (n, 15) int64 counts of each node's orbits 0-14."""
  adj = (np.asarray(adj) > 0).astype(np.int64)
  n = adj.shape[0]
  counts = np.zeros((n, NUM_ORBITS), np.int64)
  counts[:, 0] = adj.sum(1)
  triples = _subsets(n, 3)
  degrees = _subgraph_degrees(adj, triples)
  edges = degrees.sum(1) // 2
  paths = edges == 2
  np.add.at(counts, (triples[paths], degrees[paths]), 1)      # degree 1 -> 1, 2 -> 2.
  triangles = edges == 3
  np.add.at(counts[:, 3], triples[triangles], 1)
  quads = _subsets(n, 4)
  degrees = _subgraph_degrees(adj, quads)
  edges = degrees.sum(1) // 2
  signature = np.sort(degrees, 1)
  for (num_edges, sequence), orbit_of_degree in _FOUR_NODE.items():
    rows = (edges == num_edges) & np.all(signature == np.asarray(sequence), 1)
    for degree, orbit in orbit_of_degree.items():
      nodes = quads[rows][degrees[rows] == degree]
      np.add.at(counts[:, orbit], nodes, 1)
  return counts
