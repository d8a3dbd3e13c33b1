"""Graph datasets by name, split into train and test and padded into `Graph` tensors.

`GRAPH_DATASETS` maps a name to a `GraphDataset`: a generator
generate(num_graphs, seed, min_size, max_size) -> list of 0/1 adjacency matrices, and the
MMDs GDSS reports on it ("Score-based Generative Modeling of Graphs via the System of
Stochastic Differential Equations", Jo, Lee & Hwang, Table 1), if any. `load_graph_data`
generates, checks and splits a dataset and builds the training tensors: one-hot degree
features X (B, N, F), adjacency A (B, N, N) and the node mask (B, N), N = max_nodes.
"""
import dataclasses
from typing import Callable, List, Mapping, Optional

import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.graphs.batch import Graph, adjacency_batch, degree_features
from diffjax.graphs.community import community_small, train_test_split
from diffjax.registry import Registry

GRAPH_DATASETS = Registry("graph dataset")


@dataclasses.dataclass(frozen=True)
class GraphDataset:
  """generate(num_graphs, seed, min_size, max_size) -> graphs; reported: GDSS's squared
  MMDs {degree, clustering, orbit} on this dataset, or None."""
  generate: Callable[..., List]
  reported: Optional[Mapping[str, float]] = None


# GDSS's community-small row (Table 1): squared MMD of degree, clustering and orbit
# statistics against the test graphs.
GDSS_COMMUNITY_SMALL = {"degree": 0.045, "clustering": 0.086, "orbit": 0.007}

GRAPH_DATASETS.register("community_small", GraphDataset(community_small,
                                                        GDSS_COMMUNITY_SMALL))


@dataclasses.dataclass(frozen=True)
class GraphData:
  """A dataset split and padded.

  Attributes:
    train, test: lists of (n, n) 0/1 int8 adjacency matrices.
    graphs: the training graphs as a `Graph` (x (G, N, F) one-hot degrees, adj (G, N, N)).
    mask: (G, N) node mask of the training graphs.
    reported: GDSS's reported MMDs on the dataset, or None.
  """
  train: list
  test: list
  graphs: Graph
  mask: jax.Array
  reported: Optional[Mapping[str, float]] = None

  def minibatch(self, key, batch_size):
    """(Graph, mask) of `batch_size` distinct training graphs drawn at random."""
    idx = jax.random.permutation(key, len(self.train))[:batch_size]
    return Graph(self.graphs.x[idx], self.graphs.adj[idx]), self.mask[idx]


def load_graph_data(name: str, *, num_graphs: int, min_size: int, max_size: int,
                    max_nodes: int, num_features: int, test_fraction: float,
                    dataset_seed: int) -> GraphData:
  """Generates the dataset `name` (a `GRAPH_DATASETS` entry), refuses graphs larger than
  `max_nodes` or of a degree the `num_features` one-hot features cannot hold, splits it
  (`train_test_split`) and pads the training graphs. Bad values raise a one-line
  ConfigError naming the data.* key."""
  dataset = GRAPH_DATASETS.get(name)
  if min_size > max_size:
    raise ConfigError(f"data.min_size={min_size} exceeds data.max_size={max_size}; graph "
                      "sizes are drawn from [data.min_size, data.max_size].")
  graphs = dataset.generate(num_graphs, dataset_seed, min_size, max_size)
  adjacency_batch(graphs, max_nodes)   # Refuses a graph larger than the maximum.
  train, test = train_test_split(graphs, test_fraction, dataset_seed)
  adj, mask = adjacency_batch(train, max_nodes)
  x = degree_features(adj, mask, num_features)
  return GraphData(train, test, Graph(jnp.asarray(x), jnp.asarray(adj)), jnp.asarray(mask),
                   dataset.reported)
