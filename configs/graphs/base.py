"""The graphs family (`experiments.graphs`): GDSS on community-small.
"""
import ml_collections

from diffjax.train.defaults import engine_config

def base_config() -> ml_collections.ConfigDict:
  """GDSS's community-small setting (their config/community_small.yaml)."""
  config = engine_config()
  config.experiment = "graphs"
  section = ml_collections.ConfigDict
  config.data = section(dict(
      name="community_small", num_graphs=100, min_size=12, max_size=20, max_nodes=20,
      num_features=12, test_fraction=0.2, dataset_seed=0))
  vp = dict(name="vp", beta_min=0.1, beta_max=1.0, s_min=1e-4)
  config.sde = section(dict(x=section(vp), adj=section(vp)))
  config.model = section(dict(
      x=section(dict(name="gcn", depth=3, hidden=32)),
      adj=section(dict(name="gmh", num_layers=5, hidden=32, attention_dim=32, num_heads=4,
                       num_linears=2, initial_channels=2, hidden_channels=8,
                       final_channels=4))))
  config.sample = section(dict(num_steps=1000, snr=0.05, scale_eps=0.7, corrector_steps=1,
                               threshold=0.5))
  # GDSS trains 5,000 full-batch (80-graph) steps; this CPU budget (about 3 min with
  # sampling on a quiet 2-core machine) trains 1,000 steps of 40 graphs (the `paper`
  # variant restores theirs).
  config.train.update(batch_size=40, num_steps=1000, steps_per_call=100, log_every=250,
                      eval_every=1000, checkpoint_every=250)
  config.optim.update(name="adamw", learning_rate=5e-3, weight_decay=1e-4, warmup_steps=100,
                      grad_clip=1.0, ema_decay=0.999)
  config.eval.update(use_ema=False, num_samples=20, num_seeds=3)
  return config
