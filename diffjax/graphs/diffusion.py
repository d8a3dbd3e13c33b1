"""The system of two SDEs of GDSS on a graph: node features X and adjacency A diffuse on
their own Gaussian paths, and two networks learn the partial scores
grad_X log p_t(X, A) and grad_A log p_t(X, A) of the joint density ("Score-based Generative
Modeling of Graphs via the System of Stochastic Differential Equations", Jo, Lee & Hwang,
eq. 3-5).

The loss is denoising score matching mapped over the two arrays of the `Graph` pytree: one
t ~ U[0, 1] per graph for both components, the noise Z = `graph_noise` (symmetric with a
zero diagonal on A, zero on padding), and for each component c the noisy value and the
noise-prediction target of `diffjax.fields.gaussian_target` on its own path,
c_t = alpha_c(t) c + sigma_c(t) Z_c. Each network sees (X_t, A_t) and predicts its own
noise; the loss is GDSS's per-graph 1/2 |Z_hat_X - Z_X|^2 + 1/2 |Z_hat_A - Z_A|^2 (sums
over entries, so padded entries, zero in both, add nothing), averaged over graphs: their
eq. 7 with lambda = sigma^2, i.e. the `score_matching` objective's noise prediction with
its "prediction" weighting, summed over entries instead of averaged. Scores, velocities
and data predictions come from the noise by `diffjax.fields.gaussian_predictions` on each
component (score = -Z_hat / sigma).
"""
import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from diffjax import fields as fields_lib
from diffjax.core import Fields, Path, Predictions, require_gaussian
from diffjax.graphs.batch import Graph, graph_noise, mask_graph
from diffjax.graphs.sampler import gdss_pc
from diffjax.objectives.time_sampling import TIME_SAMPLERS
from diffjax.solvers import integrate

# Both networks predict their component's noise, as GDSS's do.
PREDICTION = "noise"
FIELD_NAMES = ("velocity", "score", "data", "noise")


def _half_sum_of_squares(residual):
  """(B, ...) -> (B,): 1/2 the sum of squares over each graph's entries."""
  return 0.5 * jnp.sum(residual.reshape(residual.shape[0], -1) ** 2, -1)


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

  @property
  def views(self) -> Graph:
    """The Gaussian views of both paths, as a `Graph` mapped against the arrays."""
    return Graph(self.path_x.gaussian, self.path_adj.gaussian)

  def init(self, key, graph: Graph, mask) -> Any:
    k_x, k_adj = jax.random.split(key)
    return {"x": self.node_network.init(k_x, graph.x, graph.adj, mask)["params"],
            "adj": self.adjacency_network.init(k_adj, graph.x, graph.adj, mask)["params"]}

  def predict_noise(self, params, graph: Graph, mask) -> Graph:
    """Both networks' noise predictions at the noisy graph (one evaluation of each)."""
    return Graph(self.node_network.apply({"params": params["x"]}, graph.x, graph.adj, mask),
                 self.adjacency_network.apply({"params": params["adj"]}, graph.x, graph.adj,
                                              mask))

  def noisy(self, key, t, graph: Graph, mask):
    """(G_t, Z): the noisy graph at times t (B,) and the noise drawn, which is what the
    networks regress."""
    z = graph_noise(key, graph, mask)
    pairs = jax.tree.map(
        lambda view, clean, noise: fields_lib.gaussian_target(view, t, clean, noise,
                                                              PREDICTION),
        self.views, graph, z)
    noisy, target = (Graph(pairs.x[i], pairs.adj[i]) for i in (0, 1))
    return mask_graph(noisy, mask), target

  def loss(self, params, key, graph: Graph, mask):
    """GDSS's loss on a clean batch (module docstring): (loss, {"loss_x", "loss_adj"})."""
    k_t, k_noise = jax.random.split(key)
    t = TIME_SAMPLERS.get("uniform")(k_t, graph.x.shape[0])
    noisy, target = self.noisy(k_noise, t, graph, mask)
    predicted = self.predict_noise(params, noisy, mask)
    per_graph = jax.tree.map(lambda p, z: _half_sum_of_squares(p - z), predicted, target)
    loss_x, loss_adj = jnp.mean(per_graph.x), jnp.mean(per_graph.adj)
    return loss_x + loss_adj, {"loss_x": loss_x, "loss_adj": loss_adj}

  def fields(self, params, mask) -> Fields:
    """Fields over the `Graph` state: velocity, score, data and noise, each a `Graph` of
    both components' predictions (one evaluation of both networks)."""
    def evaluate(graph, t):
      noise = self.predict_noise(params, graph, mask)
      parts = jax.tree.map(
          lambda view, value, state: fields_lib.gaussian_predictions(
              value, state, t, view, PREDICTION),
          self.views, noise, graph)
      return Predictions(**{name: Graph(getattr(parts.x, name), getattr(parts.adj, name))
                            for name in FIELD_NAMES})
    return Fields(evaluate, FIELD_NAMES)

  def sample(self, params, key, node_masks, num_features: int, num_samples: int, ts,
             **pc_options):
    """Graphs drawn by GDSS's PC sampler (`gdss_pc` with `pc_options`) over the grid ts.

    Each graph's node count is that of a random row of `node_masks` (R, N) (e.g. the
    training graphs'). The start is N(0, I) on the real entries (symmetric A), as GDSS's,
    not the path's t = 0 marginal: with beta_max = 1 that marginal still holds
    alpha = 0.76 of the data. Returns (Graph (num_samples, N, num_features) and
    (num_samples, N, N) of the final state, its node masks (num_samples, N), the number
    of evaluations of both networks).
    """
    k_size, k_source, k_sampler = jax.random.split(key, 3)
    masks = node_masks[jax.random.randint(k_size, (num_samples,), 0, node_masks.shape[0])]
    n = node_masks.shape[1]
    like = Graph(jnp.zeros((num_samples, n, num_features)), jnp.zeros((num_samples, n, n)))
    x0 = graph_noise(k_source, like, masks)
    result = integrate(gdss_pc(self.path_x, self.path_adj, masks, **pc_options),
                       self.fields(params, masks), x0, ts, k_sampler)
    return result.x, masks, result.nfe
