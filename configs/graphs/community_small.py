"""GDSS on community-small: node features and adjacency diffused by a system of two VP SDEs,
a graph-multi-head-attention network for A and a GCN for X, GDSS's PC sampler (1,000 steps,
one Langevin corrector step each), MMD of degree / clustering / orbit statistics against
the 20 test graphs beside an Erdős–Rényi baseline.

  python -m experiments.main --config=configs/graphs/community_small.py --workdir=workdirs/community_small

Variants (combine with commas): `gnn` swaps the attention network for A for the GCN
baseline; `tiny` runs in seconds for tests, e.g. `configs/graphs/community_small.py:tiny`.
Seeds: --config.seed=1 (training and sampling; the dataset is fixed by data.dataset_seed).
"""
from experiments.graphs import base_config
from experiments.pipeline import parse_arg


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("gnn",))
  config = base_config()
  if "gnn" in variants:
    config.model.adj.name = "gnn"
    del config.model.adj["attention_dim"], config.model.adj["num_heads"]
  if tiny:
    config.data.update(num_graphs=20)
    config.model.x.update(depth=1, hidden=8)
    config.model.adj.update(num_layers=2, hidden=8, hidden_channels=4, final_channels=2)
    if "attention_dim" in config.model.adj:
      config.model.adj.update(attention_dim=8, num_heads=2)
    config.sample.num_steps = 5
    config.train.update(batch_size=8, num_steps=4, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.optim.warmup_steps = 0
    config.eval.num_samples = 4
  return config
