"""EluCD on the digits: the unconditional model guided by an off-the-shelf classifier of
clean digits, per guidance scale.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/guidance/digits_elucd.py \
      --workdir=workdirs/guided_digits --mode=eval

Evaluates the run of configs/guidance/digits.py: its null-class (unconditional) model,
20 DDIM steps, guided by a DigitsMLP trained on clean digits with seed
eval.guide_classifier_seed = 1 (ReLU -> softplus_3 smoothing), applied to the denoised
estimate with EluCD's calibration (tau1 = 1, tau2 = tau1 / 2) and sine schedule, at each
sample.guidance.classifier_scales, the gradient taken through the denoiser
(--config.sample.guidance.through=estimate: at the estimate only). Reports, per scale,
the accuracy of the real-digits classifier (seed 0: another network)
`accuracy_elucd_s<scale>`, of a pixel-space 1-nearest-neighbour classifier
`nn_accuracy_elucd_s<scale>` and the proxy Fréchet distance `frechet_proxy_elucd_s<scale>`
to the test digits, with a grid per scale. `:tiny` runs in seconds.
"""
from configs.guidance import digits


def get_config(arg=None):
  config = digits.get_config(arg)
  config.eval.study = "classifier"
  if "tiny" in (arg or ""):
    config.sample.guidance.classifier_scales = (2.0,)
    config.eval.guide_classifier_seed = 0   # The evaluator itself: one training, not two.
  return config
