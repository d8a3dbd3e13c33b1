"""The Erdős–Rényi baseline: G(n, p) with p and the distribution of n fitted to training
graphs (the maximum-likelihood p is the pooled edge density, sum of edges over the sum of
node pairs)."""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ErdosRenyi:
  """G(n, p) with n drawn from the training graphs' sizes."""
  p: float
  sizes: tuple

  @classmethod
  def fit(cls, graphs) -> "ErdosRenyi":
    """Maximum likelihood on 0/1 adjacency matrices: p = sum |E| / sum n (n - 1) / 2."""
    edges = sum(int(np.triu(g, 1).sum()) for g in graphs)
    pairs = sum(len(g) * (len(g) - 1) // 2 for g in graphs)
    return cls(edges / pairs, tuple(len(g) for g in graphs))

  def sample(self, rng: np.random.Generator, num_graphs: int):
    """`num_graphs` 0/1 int8 adjacency matrices."""
    graphs = []
    for n in rng.choice(self.sizes, num_graphs):
      upper = np.triu(rng.random((n, n)) < self.p, 1)
      graphs.append((upper | upper.T).astype(np.int8))
    return graphs
