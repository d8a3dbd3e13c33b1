"""CausalDiffAE: counterfactuals of a simulated scene by intervening on causal factors.

  python -m experiments.main --config=configs/datatypes/causal_diffae.py \
      --workdir=workdirs/causal_diffae

"Causal Diffusion Autoencoders" (Komanduri et al. 2024) on 8x8 scenes of a blob whose size
causes its brightness, its position a second root (`diffjax.data.causal_scene`): an MLP
encoder to the three factors (aligned to their labels), a flow-matching MLP decoder
(rectified-flow path) conditioned on them, mechanisms of causal.edges fitted on the
encoded factors. Counterfactuals: Heun inversion of the scene to its noise
(causal.inversion_steps), an intervention propagated to the descendants, decoding.
Reported beside the same decoder without the mechanism (the intervened factor alone).
`:tiny` runs in seconds.
"""
import ml_collections

from configs.common import flow_matching_mlp, parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "causal_diffae"
  config.data = ml_collections.ConfigDict(dict(num_train=4000, num_test=300))
  config.causal = ml_collections.ConfigDict(dict(
      edges=("size->brightness",), alignment=1.0, degree=2, inversion_steps=20))
  flow_matching_mlp(config, width=256)
  config.model.cond_dim = 3
  config.train.update(batch_size=256, num_steps=2500, steps_per_call=250, log_every=500,
                      eval_every=2500, checkpoint_every=1250)
  config.optim.update(learning_rate=1e-3, warmup_steps=200)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=25))
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2)
    config.data.update(num_train=64, num_test=8)
    config.causal.inversion_steps = 2
  return config
