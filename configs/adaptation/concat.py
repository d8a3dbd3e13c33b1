"""CatVTON-style conditioning by spatial concatenation on the digits (family `concat`,
`experiments.concat`): a DiT sees [reference | noisy target] with the target's shape mask as
a second channel and learns to draw the mask's digit in the reference's stroke style.

  python -m experiments.main --config=configs/adaptation/concat.py --workdir=workdirs/concat
  python -m experiments.main --config=configs/adaptation/concat.py:no_reference \
      --workdir=workdirs/concat_no_reference

no_reference blanks the reference (the ablation); `tiny` shrinks either to seconds.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("no_reference",))
  config = engine_config()
  config.experiment = "concat"
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.model = ml_collections.ConfigDict(dict(name="dit", patch_size=2, hidden_dim=64,
                                                depth=3, num_heads=4))
  config.method = ml_collections.ConfigDict(dict(use_reference="no_reference" not in variants))
  config.train.update(num_steps=2000, batch_size=64, steps_per_call=100, log_every=250,
                      eval_every=1000, checkpoint_every=1000)
  config.optim.update(learning_rate=1e-3, warmup_steps=100, ema_decay=0.999)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=10))
  config.eval.update(num_samples=300, classifier_seed=0, pairs_seed=7)
  if tiny:
    shrink_to_tiny(config, num_steps=4, batch_size=8, num_samples=16, sample_steps=2)
  return config
