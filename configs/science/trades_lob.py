"""TRADES on the limit-order-book simulator: markets simulated order by order.

  python -m experiments.main --config=configs/science/trades_lob.py \
      --workdir=workdirs/trades_lob

A transformer denoiser ("order_transformer": the noisy next order, the last 8 orders and
the book as tokens; rectified-flow path, flow matching, 3,000 steps) of the next order
(type, price offset, size, waiting time) of a 20,000-event stream of the Hawkes /
queue-reactive order-flow simulator (`diffjax.data.order_book`). Evaluation: 8 markets of
2,000 events simulated autoregressively from the start of a held-out real stream (each
generated order executed by its own book; 10 Heun steps per order), beside 8 resampled
markets (real orders drawn i.i.d.) and 8 further real streams: `predictive_<stream>`
(MAE in ticks of a ridge forecaster of the mid change 20 events ahead trained on the
stream, tested on the held-out 10,000 real events; `predictive_no_change` the reference),
`kurtosis_<stream>`, `abs_acf_<stream>`, `return_acf_<stream>` (returns over 20 events,
lags 1-5), `mean_size_<stream>`, plots/stylised_facts_*.png. `:tiny` runs in seconds.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from diffjax.science import book_dim
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "market"
  config.data = ml_collections.ConfigDict(dict(num_events=20000, test_events=10000,
                                               history=8))
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.objective = ml_collections.ConfigDict(dict(name="flow_matching",
                                                    time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(name="order_transformer", history=8,
                                                width=64, depth=2, num_heads=4,
                                                cond_dim=book_dim(8)))
  config.train.update(batch_size=256, num_steps=3000, steps_per_call=250, log_every=500,
                      eval_every=3000, checkpoint_every=1000)
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=10))
  config.eval.update(num_paths=8, num_events=2000, interval=20, window=20, horizon=20)
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2)
    config.data.update(num_events=300, test_events=200, history=4)
    config.model.update(history=4, width=16, depth=1, num_heads=2, cond_dim=book_dim(4))
    config.eval.update(num_paths=2, num_events=80, interval=10, window=5, horizon=5)
    # One evaluation and one checkpoint, at the end: the simulation is the costly part.
    config.train.update(steps_per_call=10, log_every=10, eval_every=10, checkpoint_every=10)
  return config
