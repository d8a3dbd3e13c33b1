"""SynthER on Pendulum: a diffusion model upsamples 10% of an offline buffer for TD3+BC.

  python -m experiments.main --config=configs/datatypes/synther.py \
      --workdir=workdirs/synther

20 episodes (4,000 transitions) of a noisy scripted swing-up policy on the Pendulum-v1
dynamics (`diffjax.data.pendulum`; --config.data.backend=gymnasium collects them with
Gymnasium's Pendulum-v1 itself, the optional extra diffjax[rl]; your own buffer:
--config.data.buffer=buffer.npz with the keys of `diffjax.data.replay`). The diffusion
model sees 10% of the episodes (400 transitions: TD3+BC is data-limited there, while 5 of
50 episodes already match the full buffer). A residual MLP (width 256, 4 blocks) trained
with the EDM objective and sampled by EDM's stochastic Heun sampler draws 10,000
synthetic transitions. Reports the synthetic and a fitted Gaussian's dynamics errors and
TD3+BC returns (5 seeds, 50 episodes each) on the 10% buffer, the 10% + synthetic, the
10% + Gaussian and the full buffer (experiments/synther.py). `:tiny` runs in seconds.
The action probe evaluates a trained run again with the synthetic rows relabelled by the
simulator (a fresh behaviour action, or the model's own action, at the synthetic state):

  python -m experiments.main --config=configs/datatypes/synther.py --mode=eval \
      --workdir=workdirs/synther --config.eval.relabel='("behaviour", "model")'
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "synther"
  config.data = ml_collections.ConfigDict(dict(buffer="", backend="builtin", num_episodes=20,
                                               fraction=0.1))
  config.path = ml_collections.ConfigDict(dict(name="edm", sigma_min=0.002,
                                               sigma_max=80.0, rho=7.0))
  config.objective = ml_collections.ConfigDict(dict(name="edm", sigma_data=1.0,
                                                    p_mean=-1.2, p_std=1.2))
  config.model = ml_collections.ConfigDict(dict(name="residual_mlp", width=256, depth=4,
                                                activation="relu", layer_norm=True))
  config.train.update(batch_size=256, num_steps=4000, steps_per_call=250, log_every=500,
                      eval_every=4000, checkpoint_every=4000)
  config.optim.update(learning_rate=3e-4, warmup_steps=100)
  config.sample = ml_collections.ConfigDict(dict(solver="edm_churn", num_steps=32,
                                                 s_churn=5.0, grid="edm"))
  config.upsample = ml_collections.ConfigDict(dict(num_synthetic=10_000, real_fraction=0.5))
  config.learner = ml_collections.ConfigDict(dict(num_steps=5000, width=64,
                                                  batch_size=256, seeds=5))
  config.eval.episodes = 50
  config.eval.relabel = ()   # e.g. ("behaviour", "model"): experiments/synther.py
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2)
    config.model.update(width=32, depth=2)
    config.train.eval_every = 10
    config.data.num_episodes = 4
    config.data.fraction = 0.5
    config.upsample.num_synthetic = 64
    config.learner.update(num_steps=4, width=8, batch_size=16, seeds=1)
    config.eval.episodes = 2
  return config
