"""GDSS's predictor-corrector sampler of the system of reverse SDEs, as a `Stepper` over the
`Graph` state (X, A), run by `diffjax.solvers.integrate`.

Each step from t to t_next (h = t_next - t > 0), with the scores s = (s_X, s_A) of one
evaluation of both networks at the current (X, A) (so each component's update reads the
other's current value, as GDSS's coupled system does; "Score-based Generative Modeling of
Graphs via the System of Stochastic Differential Equations", Jo, Lee & Hwang, eq. 5 and
App. B, their PC sampler):
  corrector (`corrector_steps` times)  Langevin on each component c:
      c <- c + e_c s_c + scale_eps sqrt(2 e_c) z_c,   e_c = 2 (snr |z_c| / |s_c|)^2,
      norms per graph averaged over the batch (Song et al., Algorithm 5, without their VP
      factor alpha_i = 1 - beta_i / N, within 0.1% of 1 for GDSS's beta <= 1 and N = 1000);
  predictor  Euler–Maruyama of the reverse SDE of each component's path,
      c <- c + h (-f(t) c + g(t)^2 s_c) + g(t) sqrt(h) z_c,
      with (f, g) the forward SDE in score-SDE time (`GaussianView.forward_sde`); the last
      step adds no noise (GDSS's `noise_removal`).
Noise is `graph_noise` (symmetric adjacency noise, zero on padding). nfe per step:
corrector_steps + 1.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian, time_column
from diffjax.graphs.batch import Graph, graph_noise, mask_graph
from diffjax.solvers.sde import StepCount


def _batch_norm(a):
  return jnp.mean(jnp.sqrt(jnp.sum(a.reshape(a.shape[0], -1) ** 2, -1)))


def gdss_pc(path_x, path_adj, mask, *, snr=0.05, scale_eps=0.7, corrector_steps=1
            ) -> Stepper:
  """The PC stepper (module docstring); mask: (B, N) node mask of the graphs sampled."""
  views = Graph(require_gaussian(path_x, "gdss_pc (node features)"),
                require_gaussian(path_adj, "gdss_pc (adjacency)"))

  def init(graph, ts):
    del graph
    return StepCount(jnp.zeros((), jnp.int32), jnp.asarray(ts.shape[0] - 1, jnp.int32))

  def step(fields, graph, state, t, t_next, key):
    if key is None:
      raise ValueError("gdss_pc is stochastic: pass a PRNG key.")
    k_corr, k_pred = jax.random.split(key)
    for j in range(corrector_steps):
      score = fields.score(graph, t)
      z = graph_noise(jax.random.fold_in(k_corr, j), graph, mask)

      def langevin(c, s, e):
        size = 2 * (snr * _batch_norm(e) / jnp.maximum(_batch_norm(s), 1e-12)) ** 2
        return c + size * s + scale_eps * jnp.sqrt(2 * size) * e

      graph = mask_graph(jax.tree.map(langevin, graph, score, z), mask)
    score = fields.score(graph, t)
    z = graph_noise(k_pred, graph, mask)
    h = t_next - t
    noise_scale = jnp.where(state.index == state.num_steps - 1, 0.0, jnp.sqrt(h))

    def predictor(view, c, s, e):
      f, g = view.forward_sde(t)
      col = lambda v: time_column(v, c)
      return c + h * (-col(f) * c + col(g) ** 2 * s) + col(g) * noise_scale * e

    graph = Graph(predictor(views.x, graph.x, score.x, z.x),
                  predictor(views.adj, graph.adj, score.adj, z.adj))
    return mask_graph(graph, mask), state._replace(index=state.index + 1), corrector_steps + 1

  return Stepper(init, step, ("score",))
