"""Graph generation with GDSS's system of SDEs: community-small graphs, two score networks
(node features and adjacency) trained jointly by the engine, the coupled PC sampler run by
`integrate` over the `Graph` pytree, and GraphRNN's MMD of degree, clustering and 4-node
orbit statistics against the test split, beside an Erdős–Rényi baseline fitted to the
training graphs and the train-vs-test floor.

Config sections read here: data (num_graphs, min_size, max_size, max_nodes, num_features,
test_fraction, dataset_seed), sde (x, adj: Gaussian paths), model (x, adj: networks),
sample (num_steps, snr, scale_eps, corrector_steps, threshold), eval (num_samples per
seed, num_seeds). An evaluation writes the means and standard deviations over the seeds to
metrics.jsonl and the table beside GDSS's reported row to plots/mmd_table_<step>.png.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.graphs import (GDSS_COMMUNITY_SMALL, ErdosRenyi, Graph, GraphDiffusion,
                            adjacency_batch, build_adjacency_network, build_node_network,
                            community_small, degree_features, gdss_pc, graph_mmd_over_seeds,
                            graph_noise, quantize, train_test_split)
from diffjax.graphs.plotting import graph_grid_figure, mmd_table_figure
from diffjax.paths import build_path
from diffjax.solvers import integrate
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys
from diffjax.pipeline import component_options

GRAPH_KEYS = (
    Key("data.num_graphs", "int", 4, meaning="graphs generated (train + test)"),
    Key("data.max_nodes", "int", 2, meaning="the padded size: the largest graph allowed"),
    Key("data.num_features", "int", 1, meaning="one-hot degree features"),
    Key("data.test_fraction", "float", 0.0, 1.0, open_low=True, open_high=True),
    Key("sample.num_steps", "int", 1),
    Key("sample.snr", "float", 0.0),
    Key("sample.scale_eps", "float", 0.0),
    Key("sample.corrector_steps", "int", 0),
    Key("sample.threshold", "float", 0.0, 1.0, open_low=True, open_high=True),
    Key("eval.num_samples", "int", 2, meaning="graphs sampled per seed"),
    Key("eval.num_seeds", "int", 1, meaning="sets of generated graphs the MMDs average"),
)
SAMPLE_OPTIONS = ("snr", "scale_eps", "corrector_steps")


def load_graphs(config):
  """(train, test) lists of 0/1 adjacency matrices, checked against data.max_nodes."""
  dc = config.data
  graphs = community_small(dc.num_graphs, dc.dataset_seed, dc.min_size, dc.max_size)
  adjacency_batch(graphs, dc.max_nodes)   # Refuses a graph larger than the maximum.
  return train_test_split(graphs, dc.test_fraction, dc.dataset_seed)


def build_task(config) -> Task:
  """Builds the graph task; invalid values fail here, before the workdir is touched."""
  check_keys(config, GRAPH_KEYS)
  dc = config.data
  train, test = load_graphs(config)
  adj, mask = adjacency_batch(train, dc.max_nodes)
  x = degree_features(adj, mask, dc.num_features)
  data = Graph(jnp.asarray(x), jnp.asarray(adj))
  mask = jnp.asarray(mask)
  batch_size = config.train.batch_size
  if batch_size > len(train):
    raise ConfigError(f"train.batch_size={batch_size} exceeds the {len(train)} training "
                      f"graphs; use at most {len(train)}.")
  path_x = build_path(config.sde.x.name, **component_options(config.sde.x))
  path_adj = build_path(config.sde.adj.name, **component_options(config.sde.adj))
  diffusion = GraphDiffusion(
      path_x, path_adj,
      build_node_network(config.model.x.name, **component_options(config.model.x)),
      build_adjacency_network(config.model.adj.name, **component_options(config.model.adj)))

  def loss(params, key, shard, step):
    del step
    k_batch, k_loss = jax.random.split(key)
    idx = jax.random.permutation(k_batch, len(train))[:batch_size]
    graph = Graph(shard(data.x[idx]), shard(data.adj[idx]))
    return diffusion.loss(params, k_loss, graph, shard(mask[idx]))

  num_samples, num_seeds = config.eval.num_samples, config.eval.num_seeds
  sc = config.sample
  ts = jnp.linspace(0.0, 1.0, sc.num_steps + 1)
  options = {k: sc[k] for k in SAMPLE_OPTIONS}

  @functools.partial(jax.jit, static_argnums=2)
  def generate(params, key, count):
    k_size, k_source, k_sampler = jax.random.split(key, 3)
    sizes = mask[jax.random.randint(k_size, (count,), 0, len(train))]
    like = Graph(jnp.zeros((count,) + data.x.shape[1:]),
                 jnp.zeros((count,) + data.adj.shape[1:]))
    # GDSS starts from N(0, I) (masked, symmetric A), not from the path's N(0, sigma(0)^2):
    # with beta_max = 1 the forward marginal at s = 1 still holds alpha = 0.76 of the data.
    x0 = graph_noise(k_source, like, sizes)
    result = integrate(gdss_pc(path_x, path_adj, sizes, **options),
                       diffusion.fields(params, sizes), x0, ts, k_sampler)
    return result.x.adj, sizes, result.nfe

  er = ErdosRenyi.fit(train)

  def draw(params, key, count):
    adj_out, sizes, nfe = generate(params, key, count)
    adj_out, sizes = parallel.to_host(adj_out), parallel.to_host(sizes)
    return quantize(adj_out, sizes, sc.threshold), int(parallel.to_host(nfe))

  def figure(graphs):
    return graph_grid_figure([graphs[:8], test[:8]], ["generated", "test graphs"])

  def evaluate(params, key):
    """MMDs to the test graphs over `num_seeds` sets of `num_samples` graphs (one sampler
    call draws them all), beside as many Erdős–Rényi sets and train-vs-test subsets."""
    graphs, nfe = draw(params, key, num_samples * num_seeds)
    sets = [graphs[i * num_samples:(i + 1) * num_samples] for i in range(num_seeds)]
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2 ** 31 - 1)))
    rows = {"GDSS (reported)": GDSS_COMMUNITY_SMALL,
            "GDSS (this run)": graph_mmd_over_seeds(test, sets),
            "Erdős–Rényi": graph_mmd_over_seeds(
                test, [er.sample(rng, num_samples) for _ in range(num_seeds)]),
            "train vs test": graph_mmd_over_seeds(
                test, [[train[i] for i in rng.choice(len(train), len(test), replace=False)]
                       for _ in range(num_seeds)])}
    values = {}
    for prefix, row in zip(("", "erdos_renyi_", "train_vs_test_"), list(rows.values())[1:]):
      for name, (mean, std) in row.items():
        values.update({prefix + name: mean, f"{prefix}{name}_std": std})
    values.update(nfe=nfe, num_seeds=num_seeds, erdos_renyi_p=er.p,
                  mean_edges=float(np.mean([g.sum() / 2 for g in graphs])),
                  test_mean_edges=float(np.mean([g.sum() / 2 for g in test])))
    return values, {"graphs": figure(graphs), "mmd_table": mmd_table_figure(rows)}

  def sample(params, key):
    graphs, _ = draw(params, key, num_samples)
    padded = np.zeros((len(graphs), dc.max_nodes, dc.max_nodes), np.int8)
    for g, a in enumerate(graphs):
      padded[g, :len(a), :len(a)] = a
    return ({"adjacency": padded, "num_nodes": np.array([len(a) for a in graphs])},
            {"graphs": figure(graphs)})

  init_mask = mask[:1]
  return Task(init_params=lambda key: diffusion.init(key, Graph(data.x[:1], data.adj[:1]),
                                                     init_mask),
              loss=loss, evaluate=evaluate, sample=sample, batch_size=batch_size)


