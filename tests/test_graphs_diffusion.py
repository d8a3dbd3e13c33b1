"""GDSS's system of SDEs on the `Graph` pytree: the coupled PC sampler reaches a Gaussian
target from its exact scores, `integrate` runs pytree states (trajectories, shape checks),
the networks are permutation equivariant with symmetric, zero-diagonal, masked outputs, and
the loss has its closed-form value for a zero predictor and equals GDSS's formula written
out, and the fields convert the noise predictions as `diffjax.fields` does."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields, Predictions, time_column
from diffjax.graphs import (Graph, GraphDiffusion, build_adjacency_network,
                            build_node_network, gdss_pc, graph_noise, mask_graph)
from diffjax.paths import build_path
from diffjax.solvers import integrate

N, F = 6, 2


def _mask(seed, batch, low=3):
  """(batch, N) node masks of graphs with low..N real nodes (NumPy: no dispatch cost)."""
  sizes = np.random.default_rng(seed).integers(low, N + 1, batch)
  return (np.arange(N)[None] < sizes[:, None]).astype(np.float32)


def _pair(mask):
  """The pair mask written out: distinct real nodes."""
  return mask[:, :, None] * mask[:, None, :] * (1 - np.eye(N, dtype=np.float32))[None]


def _exact_fields(path, mean, std, mask):
  """Scores of i.i.d. N(mean, std^2) entries (node features; the upper triangle of A,
  mirrored) on a Gaussian path: -(y - alpha m) / (alpha^2 s^2 + sigma^2) per entry."""
  view = path.gaussian

  def evaluate(graph, t):
    def score(y, m, s):
      a, sg = time_column(view.alpha(t), y), time_column(view.sigma(t), y)
      return -(y - a * m) / (a ** 2 * s ** 2 + sg ** 2)
    out = Graph(score(graph.x, mean.x, std.x), score(graph.adj, mean.adj, std.adj))
    return Predictions(score=mask_graph(out, mask))
  return Fields(evaluate, ("score",))


def test_coupled_pc_sampler_reaches_the_gaussian_target_from_exact_scores():
  """200 PC steps on a VP path (beta_max = 20, so the N(0, I) start is the t = 0
  marginal): the real entries have the target mean and std within 0.05 (the sampling error
  of the ~1,000 real feature and ~2,000 adjacency entries is <= 0.015; the rest is
  discretisation); padding stays exactly zero and A symmetric with a zero diagonal. The
  trajectory is a `Graph` of (N + 1, B, ...) arrays."""
  path = build_path("vp")
  batch = 100
  mask = _mask(0, batch)
  mean, std = Graph(0.5, 1.0), Graph(0.4, 0.3)

  @jax.jit
  def run(key):
    k_source, k_sampler = jax.random.split(key)
    like = Graph(jnp.zeros((batch, N, F)), jnp.zeros((batch, N, N)))
    x0 = graph_noise(k_source, like, mask)
    return integrate(gdss_pc(path, path, mask), _exact_fields(path, mean, std, mask), x0,
                     jnp.linspace(0.0, 1.0, 201), k_sampler, return_trajectory=True)
  out = run(jax.random.PRNGKey(1))
  assert int(out.nfe) == 400
  assert out.trajectory.x.shape == (201, batch, N, F)
  assert out.trajectory.adj.shape == (201, batch, N, N)
  real_x = np.asarray(out.x.x)[mask > 0]
  pair = _pair(mask) > 0
  real_adj = np.asarray(out.x.adj)[pair]
  for values, m, s in ((real_x, 0.5, 0.4), (real_adj, 1.0, 0.3)):
    assert abs(values.mean() - m) < 0.05 and abs(values.std() - s) < 0.05
  adj = np.asarray(out.x.adj)
  np.testing.assert_array_equal(adj, np.swapaxes(adj, -1, -2))
  np.testing.assert_array_equal(adj[~pair], 0.0)
  np.testing.assert_array_equal(np.asarray(out.x.x)[mask == 0], 0.0)


def test_integrate_refuses_predictions_of_another_structure():
  path = build_path("vp")
  mask = jnp.ones((2, N))
  x0 = Graph(jnp.zeros((2, N, F)), jnp.zeros((2, N, N)))
  bad = Fields.of(score=lambda g, t: g.x)
  with pytest.raises(ValueError, match=r"score field returned shape \(2, 6, 2\) for a "
                     r"state of shape Graph\(x=\(2, 6, 2\), adj=\(2, 6, 6\)\)"):
    integrate(gdss_pc(path, path, mask), bad, x0, jnp.linspace(0.0, 1.0, 3),
              jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", ["gmh", "gnn"])
def test_networks_are_permutation_equivariant_symmetric_and_masked(name):
  """Relabelling the nodes relabels both networks' outputs (atol 1e-5: float32 sums in a
  different order); A's output is symmetric, zero on the diagonal and the padding."""
  small = dict(num_layers=2, hidden=8, hidden_channels=4, final_channels=2)
  if name == "gmh":
    small.update(attention_dim=8, num_heads=2)
  node_net = build_node_network("gcn", depth=2, hidden=8)
  adj_net = build_adjacency_network(name, **small)
  mask = np.ones((2, N), np.float32)
  mask[1, 4:] = 0.0
  perm = np.array([3, 0, 1, 2, 4, 5])                    # Keeps the padding of graph 1.
  permute = lambda a: a[:, perm][:, :, perm] if a.shape[-1] == N else a[:, perm]

  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, N, F)).astype(np.float32) * mask[..., None]
  upper = np.triu(rng.standard_normal((2, N, N)).astype(np.float32), 1)
  adj = (upper + np.swapaxes(upper, -1, -2)) * _pair(mask)
  # Random parameters drawn in NumPy (an init compiled with the network costs seconds).
  params = [jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape).astype(np.float32),
                         jax.eval_shape(net.init, jax.random.PRNGKey(0), x, adj, mask))
            for net in (node_net, adj_net)]

  @jax.jit
  def outputs(x, adj):
    return tuple(net.apply(p, x, adj, mask) for net, p in zip((node_net, adj_net), params))

  out, permuted = outputs(x, adj), outputs(permute(x), permute(adj))
  for a, b in zip(permuted, out):
    np.testing.assert_allclose(a, permute(np.asarray(b)), atol=1e-5)
  out_x, out_adj = (np.asarray(o) for o in out)
  assert np.abs(out_adj).max() > 0 and np.abs(out_x).max() > 0
  np.testing.assert_allclose(out_adj, np.swapaxes(out_adj, -1, -2), atol=1e-6)
  np.testing.assert_array_equal(out_adj[_pair(mask) == 0], 0.0)
  np.testing.assert_array_equal(out_x[1, 4:], 0.0)


class _ZeroNode(nn.Module):
  @nn.compact
  def __call__(self, x, adj, mask):
    self.param("unused", nn.initializers.zeros, ())
    return jnp.zeros_like(x)


class _ZeroAdj(nn.Module):
  @nn.compact
  def __call__(self, x, adj, mask):
    self.param("unused", nn.initializers.zeros, ())
    return jnp.zeros_like(adj)


def test_loss_of_a_zero_predictor_is_half_the_number_of_noisy_entries():
  """E[1/2 |0 - Z|^2] per graph is (n F + n (n - 1)) / 2 for a graph of n real nodes (both
  triangles of A count): 1/2 chi^2 with n F degrees of freedom for X (variance n F / 2),
  and chi^2 with m = n (n - 1) / 2 for the symmetric A (variance 2 m). Checked within 4
  standard errors over 400 graphs. The noisy graph is alpha G + sigma Z on real entries
  and zero on padding."""
  path = build_path("vp", beta_max=1.0)
  diffusion = GraphDiffusion(path, path, _ZeroNode(), _ZeroAdj())
  batch = 400
  mask = _mask(4, batch)
  clean = Graph(jnp.ones((batch, N, F)), jnp.asarray(_pair(mask)))

  @jax.jit
  def run(key):
    k_init, k_loss, k_noisy = jax.random.split(key, 3)
    params = diffusion.init(k_init, clean, mask)
    return (diffusion.loss(params, k_loss, clean, mask),
            diffusion.noisy(k_noisy, jnp.full((batch,), 0.5), clean, mask))
  (loss, aux), (noisy, z) = run(jax.random.PRNGKey(5))
  n = mask.sum(1)
  k, m = n * F, n * (n - 1) / 2
  assert abs(float(aux["loss_x"]) - np.mean(k) / 2) < 4 * np.sqrt(np.mean(k / 2) / batch)
  assert abs(float(aux["loss_adj"]) - np.mean(m)) < 4 * np.sqrt(np.mean(2 * m) / batch)
  assert float(loss) == pytest.approx(float(aux["loss_x"] + aux["loss_adj"]))
  alpha, sigma = path.gaussian.alpha(0.5), path.gaussian.sigma(0.5)
  np.testing.assert_allclose(noisy.adj, (alpha * clean.adj + sigma * z.adj) * _pair(mask),
                             atol=1e-6)
  np.testing.assert_allclose(noisy.x, (alpha * clean.x + sigma * z.x) * mask[..., None],
                             atol=1e-6)


def _small_random_diffusion(rng, x, adj, mask):
  """GCN and GNN networks with random NumPy parameters, on two different VP paths (so a
  mix-up of the components' coefficients shows)."""
  diffusion = GraphDiffusion(
      build_path("vp", beta_max=1.0), build_path("vp", beta_min=0.5, beta_max=4.0),
      build_node_network("gcn", depth=1, hidden=8),
      build_adjacency_network("gnn", num_layers=1, hidden=8, hidden_channels=4,
                              final_channels=2))
  shapes = jax.eval_shape(diffusion.init, jax.random.PRNGKey(0), Graph(x, adj), mask)
  params = jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape).astype(np.float32),
                        shapes)
  return diffusion, params


def test_loss_equals_gdss_formula_and_fields_convert_the_noise():
  """On a fixed batch and key the loss (score matching mapped over X and A through
  `diffjax.fields.gaussian_target`) equals GDSS's loss written out: t ~ U[0, 1] from the
  key's first half, Z = graph_noise from its second, G_t = mask(alpha G + sigma Z) per
  component, 1/2 |Z_hat - Z|^2 summed over each graph's entries, averaged over graphs
  (their eq. 7 with lambda = sigma^2). The fields give score = -Z_hat / sigma and
  data = (G_t - sigma Z_hat) / alpha per component, at a scalar t as the samplers call."""
  rng = np.random.default_rng(7)
  batch = 5
  mask = _mask(8, batch)
  x = np.eye(F, dtype=np.float32)[rng.integers(0, F, (batch, N))] * mask[..., None]
  upper = np.triu(rng.random((batch, N, N)) < 0.5, 1).astype(np.float32)
  clean = Graph(jnp.asarray(x), jnp.asarray((upper + np.swapaxes(upper, -1, -2))
                                            * _pair(mask)))
  diffusion, params = _small_random_diffusion(rng, clean.x, clean.adj, mask)
  key = jax.random.PRNGKey(11)

  def written_out(params, key):
    k_t, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_t, (batch,))
    z = graph_noise(k_noise, clean, mask)
    views = (diffusion.path_x.gaussian, diffusion.path_adj.gaussian)
    noisy = mask_graph(Graph(*(
        time_column(v.alpha(t), g) * g + time_column(v.sigma(t), g) * e
        for v, g, e in zip(views, clean, z))), mask)
    predicted = diffusion.predict_noise(params, noisy, mask)
    half_sum = lambda a: 0.5 * jnp.sum((a ** 2).reshape(batch, -1), -1)
    return jnp.mean(half_sum(predicted.x - z.x)), jnp.mean(half_sum(predicted.adj - z.adj))

  @jax.jit
  def both(params, key):
    t = 0.3
    noisy = mask_graph(Graph(clean.x + 0.5, clean.adj + 0.5), mask)
    out = diffusion.fields(params, mask).evaluate(noisy, t)
    return diffusion.loss(params, key, clean, mask), written_out(params, key), noisy, out
  (loss, aux), (loss_x, loss_adj), noisy, out = both(params, key)
  np.testing.assert_allclose(aux["loss_x"], loss_x, rtol=1e-6)
  np.testing.assert_allclose(aux["loss_adj"], loss_adj, rtol=1e-6)
  np.testing.assert_allclose(loss, loss_x + loss_adj, rtol=1e-6)
  assert float(loss_adj) > 0 and float(loss_x) > 0
  for view, state, score, data, noise in zip(
      (diffusion.path_x.gaussian, diffusion.path_adj.gaussian), noisy, out.score, out.data,
      out.noise):
    alpha, sigma = float(view.alpha(0.3)), float(view.sigma(0.3))
    np.testing.assert_allclose(score, -np.asarray(noise) / sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data, (np.asarray(state) - sigma * np.asarray(noise)) / alpha,
                               rtol=1e-5, atol=1e-5)
