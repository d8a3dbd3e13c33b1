"""Graph data and metrics without networkx: orbit counts, degree histograms and clustering
coefficients against hand-enumerated small graphs (and the orbits against an independent
brute-force isomorphism enumeration), each MMD statistic against its hand-computed value,
the EMD of the kernels against SciPy, the community generator's structure, the
Erdős–Rényi fit, and one-line refusals of bad graphs."""
import itertools
import math

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from diffjax.errors import ConfigError
from diffjax.graphs import (ErdosRenyi, adjacency_batch, community_small, degree_features,
                            graph_mmd, graph_mmd_over_seeds, orbit_counts, pool_over_runs,
                            train_test_split)
from diffjax.graphs import mmd


def _graph(n, edges):
  adj = np.zeros((n, n), np.int8)
  for i, j in edges:
    adj[i, j] = adj[j, i] = 1
  return adj


# The eight graphlets on 3 and 4 nodes with the orbit of each node (Pržulj's numbering).
_GRAPHLETS = [
    (3, [(0, 1), (1, 2)], [1, 2, 1]),
    (3, [(0, 1), (1, 2), (0, 2)], [3, 3, 3]),
    (4, [(0, 1), (1, 2), (2, 3)], [4, 5, 5, 4]),
    (4, [(0, 1), (0, 2), (0, 3)], [7, 6, 6, 6]),
    (4, [(0, 1), (1, 2), (2, 3), (3, 0)], [8, 8, 8, 8]),
    (4, [(0, 1), (1, 2), (2, 0), (2, 3)], [10, 10, 11, 9]),
    (4, [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)], [13, 12, 13, 12]),
    (4, list(itertools.combinations(range(4), 2)), [14, 14, 14, 14]),
]


def _counts(rows):
  """{node: {orbit: count}} -> (n, 15)."""
  out = np.zeros((len(rows), 15), np.int64)
  for v, row in enumerate(rows):
    for orbit, count in row.items():
      out[v, orbit] = count
  return out


# Hand enumeration: every connected 3- and 4-node induced subgraph of each graph, listed.
_HAND = {
    # Path 0-1-2-3: P3s {0,1,2} (middle 1) and {1,2,3} (middle 2); the P4 itself.
    "path": (_graph(4, [(0, 1), (1, 2), (2, 3)]),
             _counts([{0: 1, 1: 1, 4: 1}, {0: 2, 1: 1, 2: 1, 5: 1},
                      {0: 2, 1: 1, 2: 1, 5: 1}, {0: 1, 1: 1, 4: 1}])),
    # Claw, centre 0: three P3s with the centre in the middle; the star.
    "claw": (_graph(4, [(0, 1), (0, 2), (0, 3)]),
             _counts([{0: 3, 2: 3, 7: 1}] + [{0: 1, 1: 2, 6: 1}] * 3)),
    # 4-cycle: each node the middle of one P3 and an end of two; the cycle.
    "cycle": (_graph(4, [(0, 1), (1, 2), (2, 3), (3, 0)]),
              _counts([{0: 2, 1: 2, 2: 1, 8: 1}] * 4)),
    # Paw (triangle 0 1 2, pendant 3 at 2): triangle {0,1,2}, P3s {0,2,3} and {1,2,3}
    # with middle 2 ({0,1,3} is disconnected).
    "paw": (_graph(4, [(0, 1), (1, 2), (2, 0), (2, 3)]),
            _counts([{0: 2, 1: 1, 3: 1, 10: 1}, {0: 2, 1: 1, 3: 1, 10: 1},
                     {0: 3, 2: 2, 3: 1, 11: 1}, {0: 1, 1: 2, 9: 1}])),
    # Diamond (K4 minus 1-3): triangles {0,1,2}, {0,2,3}; P3s {1,0,3}, {1,2,3}.
    "diamond": (_graph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]),
                _counts([{0: 3, 2: 1, 3: 2, 13: 1}, {0: 2, 1: 2, 3: 1, 12: 1},
                         {0: 3, 2: 1, 3: 2, 13: 1}, {0: 2, 1: 2, 3: 1, 12: 1}])),
    # K4: each node in C(3, 2) = 3 triangles and the K4.
    "k4": (_graph(4, list(itertools.combinations(range(4), 2))),
           _counts([{0: 3, 3: 3, 14: 1}] * 4)),
    # Triangle 0 1 2 and an isolated edge 3-4: no 4-node graphlet is connected.
    "triangle_and_edge": (_graph(5, [(0, 1), (1, 2), (2, 0), (3, 4)]),
                          _counts([{0: 2, 3: 1}] * 3 + [{0: 1}] * 2)),
}


@pytest.mark.parametrize("name", sorted(_HAND))
def test_orbit_counts_equal_hand_enumeration(name):
  adj, expected = _HAND[name]
  np.testing.assert_array_equal(orbit_counts(adj), expected)


def _by_brute_force(adj):
  """Orbit counts by matching each 3- and 4-node subset to a graphlet under all node
  permutations (independent of orbits.py's degree rule)."""
  n = len(adj)
  counts = np.zeros((n, 15), np.int64)
  counts[:, 0] = adj.sum(1)
  templates = [(k, _graph(k, edges), orbits) for k, edges, orbits in _GRAPHLETS]
  for k in (3, 4):
    for nodes in itertools.combinations(range(n), k):
      sub = adj[np.ix_(nodes, nodes)]
      for size, template, orbits in templates:
        if size != k:
          continue
        match = next((p for p in itertools.permutations(range(k))
                      if np.array_equal(sub, template[np.ix_(p, p)])), None)
        if match is not None:   # Node nodes[i] plays template node match[i].
          for i, v in enumerate(nodes):
            counts[v, orbits[match[i]]] += 1
          break
  return counts


def test_orbit_counts_equal_a_brute_force_isomorphism_enumeration():
  rng = np.random.default_rng(0)
  for n, p in [(7, 0.3), (7, 0.5), (7, 0.8)]:
    upper = np.triu(rng.random((n, n)) < p, 1)
    adj = (upper | upper.T).astype(np.int8)
    np.testing.assert_array_equal(orbit_counts(adj), _by_brute_force(adj))


def test_degree_histograms_and_clustering_of_hand_graphs():
  """Claw: degrees (3, 1, 1, 1); paw: clustering 1, 1, 1/3 (one edge among the joint's
  three neighbours), 0 (degree 1); diamond: 2/3 at the degree-3 nodes, 1 at the others."""
  np.testing.assert_array_equal(mmd.degree_histogram(_HAND["claw"][0]), [0, 3, 0, 1])
  np.testing.assert_array_equal(mmd.degree_histogram(_graph(4, [(0, 1)])), [2, 2])
  np.testing.assert_allclose(mmd.clustering_coefficients(_HAND["paw"][0]),
                             [1, 1, 1 / 3, 0], atol=1e-12)
  np.testing.assert_allclose(mmd.clustering_coefficients(_HAND["diamond"][0]),
                             [2 / 3, 1, 2 / 3, 1], atol=1e-12)


def test_each_mmd_equals_its_hand_computed_value():
  """Reference {K3}, generated {P3}; squared MMD = k(x, x) + k(y, y) - 2 k(x, y) = 2 - 2 k:
  degree: pmfs delta_2 and (0, 2/3, 1/3), W1 = 2/3, k = exp(-(2/3)^2 / 2);
  clustering: all 1 (last bin) vs all 0 (first bin), W1 = 99/100, k = exp(-0.99^2 / 0.02);
  orbit: mean counts (2, 0, 0, 1) vs (4/3, 2/3, 1/3, 0), |d|^2 = 2, k = exp(-2 / 1800)."""
  k3, p3 = _graph(3, [(0, 1), (1, 2), (0, 2)]), _graph(3, [(0, 1), (1, 2)])
  values = graph_mmd([k3], [p3])
  expected = {"degree": 2 - 2 * math.exp(-(2 / 3) ** 2 / 2),
              "clustering": 2 - 2 * math.exp(-0.99 ** 2 / 0.02),
              "orbit": 2 - 2 * math.exp(-2 / 1800)}
  assert values == pytest.approx(expected, rel=1e-9)
  # Isolated nodes of generated graphs are dropped first (as GDSS evaluates).
  padded = np.pad(p3, ((0, 2), (0, 2)))
  assert graph_mmd([k3], [padded]) == pytest.approx(expected, rel=1e-9)
  assert graph_mmd_over_seeds([k3], [[p3], [k3]])["degree"] == pytest.approx(
      (expected["degree"] / 2, expected["degree"] / 2), rel=1e-9)


def test_emd_kernel_equals_scipy_wasserstein_and_mmd_properties():
  rng = np.random.default_rng(0)
  p, q = rng.random((3, 7)), rng.random((4, 7))
  p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
  kernel = mmd.gaussian_emd_kernel(p, q, sigma=0.7, bin_width=0.1)
  support = np.arange(7) * 0.1
  for i, j in itertools.product(range(3), range(4)):
    w1 = wasserstein_distance(support, support, p[i], q[j])
    assert kernel[i, j] == pytest.approx(math.exp(-w1 ** 2 / (2 * 0.49)), rel=1e-9)
  assert mmd.mmd_squared(p, p, mmd.gaussian_emd_kernel) == pytest.approx(0.0, abs=1e-12)
  assert mmd.mmd_squared(p, q, mmd.gaussian_emd_kernel) > 0
  graphs = community_small(10, seed=3)
  assert graph_mmd(graphs, graphs) == pytest.approx(
      {"degree": 0.0, "clustering": 0.0, "orbit": 0.0}, abs=1e-12)


def test_community_small_structure_and_split():
  """Even sizes 12-20, the two diagonal blocks are G(c, 0.7) (pooled density within 4
  standard errors), at least one bridge each, 80/20 split."""
  graphs = community_small(100, seed=0)
  sizes = np.array([len(g) for g in graphs])
  assert set(sizes) <= {12, 14, 16, 18, 20} and len(set(sizes)) >= 4
  edges = pairs = 0
  for g in graphs:
    c = len(g) // 2
    assert np.array_equal(g, g.T) and not np.diagonal(g).any()
    assert g[:c, c:].sum() >= 1
    for block in (g[:c, :c], g[c:, c:]):
      edges, pairs = edges + np.triu(block, 1).sum(), pairs + c * (c - 1) // 2
  se = math.sqrt(0.7 * 0.3 / pairs)
  assert abs(edges / pairs - 0.7) < 4 * se
  train, test = train_test_split(graphs, 0.2, seed=0)
  assert (len(train), len(test)) == (80, 20)


def test_erdos_renyi_fit_is_the_pooled_edge_density():
  graphs = community_small(30, seed=1)
  er = ErdosRenyi.fit(graphs)
  edges = sum(np.triu(g, 1).sum() for g in graphs)
  assert er.p == edges / sum(len(g) * (len(g) - 1) / 2 for g in graphs)
  samples = er.sample(np.random.default_rng(0), 200)
  density = (sum(np.triu(g, 1).sum() for g in samples)
             / sum(len(g) * (len(g) - 1) / 2 for g in samples))
  assert abs(density - er.p) < 0.02                     # ~4 standard errors.
  assert {len(g) for g in samples} <= set(er.sizes)


def test_bad_graphs_are_refused_naming_the_value():
  square = np.zeros((3, 3), np.int8)
  with pytest.raises(ConfigError, match=r"Graph 1: .*square.*shape \(3, 4\)"):
    adjacency_batch([square, np.zeros((3, 4))], 20)
  asym = square.copy()
  asym[0, 2] = 1
  with pytest.raises(ConfigError, match=r"Graph 0: .*not symmetric \(A\[0, 2\] = 1"):
    adjacency_batch([asym], 20)
  with pytest.raises(ConfigError, match=r"Graph 0 has 21 nodes, more than .*"
                     r"data.max_nodes=20"):
    adjacency_batch([np.zeros((21, 21))], 20)
  with pytest.raises(ConfigError, match="entries must be 0 or 1; found 2"):
    adjacency_batch([2 * (1 - np.eye(3))], 20)
  with pytest.raises(ConfigError, match="self-loops"):
    adjacency_batch([np.eye(3)], 20)
  adj, mask = adjacency_batch([1 - np.eye(4)], 6)
  with pytest.raises(ConfigError, match=r"degree 3, .*data.num_features >= 4"):
    degree_features(adj, mask, 3)


def test_pooling_runs_equals_the_statistics_over_all_their_sets():
  """Three runs of four sets each: the pooled mean and population std from the runs'
  (mean, std) equal those of the twelve sets' values."""
  rng = np.random.default_rng(0)
  values = rng.random((3, 4, 9))        # runs x sets x (3 rows x 3 statistics)
  names = [prefix + stat for prefix in ("", "erdos_renyi_", "train_vs_test_")
           for stat in ("degree", "clustering", "orbit")]
  records = []
  for run in values:
    record = {"num_seeds": 4}
    for j, name in enumerate(names):
      record.update({name: run[:, j].mean(), f"{name}_std": run[:, j].std()})
    records.append(record)
  pooled = pool_over_runs(records)
  for j, name in enumerate(names):
    prefix, stat = name.rsplit("_", 1) if "_" in name else ("", name)
    label = {"": "GDSS (this run)", "erdos_renyi": "Erdős–Rényi",
             "train_vs_test": "train vs test"}[prefix]
    mean, std = pooled[label][stat]
    assert mean == pytest.approx(values[:, :, j].mean())
    assert std == pytest.approx(values[:, :, j].std())
  with pytest.raises(ValueError, match="same num_seeds"):
    pool_over_runs([records[0], dict(records[1], num_seeds=3)])
