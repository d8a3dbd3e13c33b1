"""Graph generation with GDSS's system of SDEs (`diffjax.graphs`): a graph dataset, two
score networks (node features and adjacency) trained jointly by the engine, the coupled PC
sampler, and the MMD table against the test split beside an Erdős–Rényi baseline and the
train-vs-test floor.

Config sections read here: data (name, num_graphs, min_size, max_size, max_nodes,
num_features, test_fraction, dataset_seed), sde (x, adj: Gaussian paths), model (x, adj:
networks), sample (num_steps, snr, scale_eps, corrector_steps, threshold), eval
(num_samples per seed, num_seeds). Every key is checked before the workdir is touched. An
evaluation writes the means and standard deviations over the seeds to metrics.jsonl and the
table beside GDSS's reported row to plots/mmd_table_<step>.png.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.graphs import (GRAPH_DATASETS, build_graph_diffusion, load_graph_data,
                            mmd_table, pad_adjacencies, quantize)
from diffjax.graphs.plotting import graph_grid_figure, mmd_table_figure
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

GRAPH_KEYS = (
    Key("data.name", "name", names=GRAPH_DATASETS.names),
    Key("data.num_graphs", "int", 4, meaning="graphs generated (train + test)"),
    Key("data.min_size", "int", 1, meaning="the smallest graph's node count"),
    Key("data.max_size", "int", 1, meaning="the largest graph's node count"),
    Key("data.max_nodes", "int", 2, meaning="the padded size: the largest graph allowed"),
    Key("data.num_features", "int", 1, meaning="one-hot degree features"),
    Key("data.test_fraction", "float", 0.0, 1.0, open_low=True, open_high=True),
    Key("data.dataset_seed", "int", 0, 2 ** 32 - 1),
    Key("model.x.depth", "int", 1),
    Key("model.x.hidden", "int", 1),
    *(Key(f"model.adj.{name}", "int", 1) for name in (
        "num_layers", "hidden", "attention_dim", "num_heads", "num_linears",
        "initial_channels", "hidden_channels", "final_channels")),
    Key("sample.num_steps", "int", 1),
    Key("sample.snr", "float", 0.0),
    Key("sample.scale_eps", "float", 0.0),
    Key("sample.corrector_steps", "int", 0),
    Key("sample.threshold", "float", 0.0, 1.0, open_low=True, open_high=True),
    Key("eval.num_samples", "int", 2, meaning="graphs sampled per seed"),
    Key("eval.num_seeds", "int", 1, meaning="sets of generated graphs the MMDs average"),
)
SAMPLE_OPTIONS = ("snr", "scale_eps", "corrector_steps")


def build_task(config) -> Task:
  """Builds the graph task; invalid values fail here, before the workdir is touched."""
  check_keys(config, GRAPH_KEYS)
  dc = config.data
  data = load_graph_data(dc.name, num_graphs=dc.num_graphs, min_size=dc.min_size,
                         max_size=dc.max_size, max_nodes=dc.max_nodes,
                         num_features=dc.num_features, test_fraction=dc.test_fraction,
                         dataset_seed=dc.dataset_seed)
  batch_size = config.train.batch_size
  if batch_size > len(data.train):
    raise ConfigError(f"train.batch_size={batch_size} exceeds the {len(data.train)} "
                      f"training graphs; use at most {len(data.train)}.")
  diffusion = build_graph_diffusion(config.sde, config.model)

  def loss(params, key, shard, step):
    del step
    k_batch, k_loss = jax.random.split(key)
    graph, mask = data.minibatch(k_batch, batch_size)
    return diffusion.loss(params, k_loss, jax.tree.map(shard, graph), shard(mask))

  sc = config.sample
  ts = jnp.linspace(0.0, 1.0, sc.num_steps + 1)
  generate = jax.jit(functools.partial(diffusion.sample, node_masks=data.mask,
                                       num_features=dc.num_features, ts=ts,
                                       **{k: sc[k] for k in SAMPLE_OPTIONS}),
                     static_argnames="num_samples")

  def draw(params, key, count):
    graph, masks, nfe = generate(params, key, num_samples=count)
    adj, masks = parallel.to_host(graph.adj), parallel.to_host(masks)
    return quantize(adj, masks, sc.threshold), int(parallel.to_host(nfe))

  def figure(graphs):
    return graph_grid_figure([graphs[:8], data.test[:8]], ["generated", "test graphs"])

  num_samples, num_seeds = config.eval.num_samples, config.eval.num_seeds

  def evaluate(params, key):
    """MMDs to the test graphs over `num_seeds` sets of `num_samples` graphs (one sampler
    call draws them all), beside as many Erdős–Rényi sets and train-vs-test subsets."""
    graphs, nfe = draw(params, key, num_samples * num_seeds)
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2 ** 31 - 1)))
    metrics, rows = mmd_table(data.train, data.test, graphs, num_seeds, rng, data.reported)
    return dict(metrics, nfe=nfe), {"graphs": figure(graphs),
                                    "mmd_table": mmd_table_figure(rows)}

  def sample(params, key):
    graphs, _ = draw(params, key, num_samples)
    adjacency, num_nodes = pad_adjacencies(graphs, dc.max_nodes)
    return {"adjacency": adjacency, "num_nodes": num_nodes}, {"graphs": figure(graphs)}

  first = jax.tree.map(lambda a: a[:1], data.graphs)
  return Task(init_params=lambda key: diffusion.init(key, first, data.mask[:1]),
              loss=loss, evaluate=evaluate, sample=sample, batch_size=batch_size)
