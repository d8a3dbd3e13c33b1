"""PPAP (Go et al., CVPR 2023): noise-range expert classifiers trained data-free by
knowledge transfer from a clean classifier, guiding the digits run's unconditional model.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/adaptation/ppap_digits.py \
      --workdir=workdirs/ppap --config.eval.prior_workdir=workdirs/guided_digits
  (--config.ppap.num_experts=1: the single noise-aware classifier;
   --config.ppap.transfer_data=real: experts transferred on real digits)

Four experts on t in [0, .25), [.25, .5), [.5, .75), [.75, 1] (`experiments.ppap`), each
1,500 steps of cross-entropy to the clean teacher's soft labels on 2,000 of the prior's own
samples noised to its times; evaluation: class accuracy of 200 guided samples per scale of
eval.guidance_scales (experts and the clean teacher on x_t), the experts' agreement with
the teacher on noised test digits. `:tiny` trains 4 steps on 32 samples (needs a prior run;
the tests train a tiny one). Boundaries that do not cover [0, 1] are refused in one line,
exit 2, nothing written.
"""
import ml_collections

from configs.common import parse_arg
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "ppap"
  config.data = ml_collections.ConfigDict(dict(name="digits", image_size=8, data_dir=""))
  config.classifier = ml_collections.ConfigDict(dict(width=256, depth=2, activation="silu",
                                                     time_dim=32))
  config.ppap = ml_collections.ConfigDict(dict(num_experts=4, boundaries=(),
                                               transfer_data="samples", num_transfer=2000,
                                               teacher_seed=1))
  config.train.update(batch_size=128, num_steps=1500, steps_per_call=50, log_every=500,
                      eval_every=1500, checkpoint_every=1500)
  config.optim.update(learning_rate=1e-3, warmup_steps=50)
  config.eval.update(prior_workdir="", num_samples=200, guidance_scales=(1.0, 2.0, 4.0),
                     noise_times=(0.1, 0.4, 0.7, 0.95))
  if tiny:
    config.train.update(num_steps=4, batch_size=16, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.optim.warmup_steps = 1
    config.classifier.update(width=16, depth=1)
    config.ppap.update(num_transfer=32, num_experts=2)
    config.eval.update(num_samples=10, guidance_scales=(1.0,), noise_times=(0.5,))
  return config
