"""The system of two SDEs of GDSS on a graph: node features X and adjacency A diffuse on
their own Gaussian paths, and two networks learn the partial scores
grad_X log p_t(X, A) and grad_A log p_t(X, A) of the joint density ("Score-based Generative
Modeling of Graphs via the System of Stochastic Differential Equations", Jo, Lee & Hwang,
eq. 3-5).

Forward: X_t = alpha_X(t) X + sigma_X(t) Z_X and A_t = alpha_A(t) A + sigma_A(t) Z_A with
the same t for both; Z_A is symmetric with a zero diagonal and both are zero on padding
(`diffjax.graphs.batch.graph_noise`). Each network sees (X_t, A_t) and predicts its own
noise, so the scores are -Z_hat / sigma; the loss is GDSS's per-graph
1/2 |Z_hat_X - Z_X|^2 + 1/2 |Z_hat_A - Z_A|^2 (sums over entries), averaged over graphs
(their eq. 7 with lambda = sigma^2, i.e. noise prediction).
"""
import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from diffjax.core import Fields, Path, Predictions, require_gaussian, time_column
from diffjax.graphs.batch import Graph, graph_noise, mask_graph


@dataclasses.dataclass(frozen=True)
class GraphDiffusion:
  """Two Gaussian paths and two networks (`diffjax.graphs.networks`).

  Parameters are {"x": node network params, "adj": adjacency network params}.
  """
  path_x: Path
  path_adj: Path
  node_network: nn.Module
  adjacency_network: nn.Module

  def __post_init__(self):
    require_gaussian(self.path_x, "The node features' path")
    require_gaussian(self.path_adj, "The adjacency's path")

  def init(self, key, graph: Graph, mask) -> Any:
    k_x, k_adj = jax.random.split(key)
    return {"x": self.node_network.init(k_x, graph.x, graph.adj, mask)["params"],
            "adj": self.adjacency_network.init(k_adj, graph.x, graph.adj, mask)["params"]}

  def predict_noise(self, params, graph: Graph, mask) -> Graph:
    """Both networks' noise predictions at the noisy graph (one evaluation of each)."""
    return Graph(self.node_network.apply({"params": params["x"]}, graph.x, graph.adj, mask),
                 self.adjacency_network.apply({"params": params["adj"]}, graph.x, graph.adj,
                                              mask))

  def sigmas(self, t, like: Graph) -> Graph:
    """sigma_X(t), sigma_A(t) as columns broadcasting against x and adj; t () or (B,)."""
    return Graph(time_column(self.path_x.gaussian.sigma(t), like.x),
                 time_column(self.path_adj.gaussian.sigma(t), like.adj))

  def noisy(self, key, t, graph: Graph, mask):
    """(G_t, Z): the noisy graph at times t (B,) and the noise drawn."""
    z = graph_noise(key, graph, mask)
    alpha = Graph(time_column(self.path_x.gaussian.alpha(t), graph.x),
                  time_column(self.path_adj.gaussian.alpha(t), graph.adj))
    sigma = self.sigmas(t, graph)
    noisy = jax.tree.map(lambda a, g, s, e: a * g + s * e, alpha, graph, sigma, z)
    return mask_graph(noisy, mask), z

  def loss(self, params, key, graph: Graph, mask):
    """GDSS's loss on a clean batch (module docstring): (loss, {"loss_x", "loss_adj"})."""
    k_t, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_t, (graph.x.shape[0],))
    noisy, z = self.noisy(k_noise, t, graph, mask)
    predicted = self.predict_noise(params, noisy, mask)
    per_graph = lambda a, b: 0.5 * jnp.sum((a - b).reshape(a.shape[0], -1) ** 2, -1)
    loss_x = jnp.mean(per_graph(predicted.x, z.x))
    loss_adj = jnp.mean(per_graph(predicted.adj, z.adj))
    return loss_x + loss_adj, {"loss_x": loss_x, "loss_adj": loss_adj}

  def fields(self, params, mask) -> Fields:
    """Fields over the `Graph` state: noise and score, each a `Graph` of both parts."""
    def evaluate(graph, t):
      noise = self.predict_noise(params, graph, mask)
      sigma = self.sigmas(jnp.asarray(t, jnp.float32), graph)
      return Predictions(score=jax.tree.map(lambda e, s: -e / s, noise, sigma), noise=noise)
    return Fields(evaluate, ("score", "noise"))
