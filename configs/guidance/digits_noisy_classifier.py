"""Classifier guidance of the digits run by a noise-aware classifier trained by diffjax.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/guidance/digits_noisy_classifier.py \
      --workdir=workdirs/noisy_classifier \
      --config.eval.diffusion_workdir=workdirs/guided_digits

Trains a time-conditioned MLP classifier p_t(y | x_t) (`diffjax.guidance.noisy_classifier`)
by cross-entropy on noisy digits x_t of the rectified-flow path (the digits run's path),
4,000 steps through the engine (checkpoints, EMA). Evaluation reports its accuracy on
noisy held-out digits at t = 0.25 / 0.5 / 0.75 / 1 (`noisy_accuracy_t*`) and, with
eval.diffusion_workdir, samples the digits run's unconditional (null-class) model with
classifier guidance s_u + scale grad log p_t(y | x) for each eval.guidance_scales (20
DDIM steps): the real-digits classifier's accuracy (`accuracy_classifier_s<scale>`), the
pixel-space 1-NN's, and plots/classifier_s<scale>_<step>.png. `:tiny` runs in seconds
(no diffusion run).
"""
from configs.guidance.base import noisy_classifier_config
from configs.common import parse_arg


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = noisy_classifier_config()
  if tiny:
    config.train.update(num_steps=10, batch_size=16, steps_per_call=5, log_every=5,
                        eval_every=10, checkpoint_every=10)
    config.optim.warmup_steps = 1
    config.classifier.update(width=16, depth=1)
    config.eval.update(noise_times=(0.5, 1.0), num_samples=20)
  return config
