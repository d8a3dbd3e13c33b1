"""Cheaper guidance on the digits: CFG, Adaptive Guidance and LinearAG side by side.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/guidance/digits_linear_ag.py \
      --workdir=workdirs/guided_digits --mode=eval

Evaluates the run of configs/guidance/digits.py with 20 DDIM steps at w = 2 (p_u + w (p_c
- p_u)): CFG (2 evaluations per example and step), Adaptive Guidance (threshold 0.99 on
the cosine of the noise predictions) and LinearAG (the unconditional noise estimated from
x_t, the conditional noise and the last step's predictions, per-step coefficients fitted
on 256 calibration CFG trajectories; the first 5 steps exact). Reports per method the
digits classifier's accuracy `accuracy_<method>`, the 1-NN accuracy, the proxy Fréchet
distance `frechet_proxy_<method>`, `nfe_<method>` (CFG: batched calls on [x, x], i.e. 2
evaluations per example each; the others: evaluations per example) and the wall time of
one batch `seconds_<method>`, with a grid each. `:tiny` runs in seconds.
"""
from configs.guidance import digits


def get_config(arg=None):
  config = digits.get_config(arg)
  config.eval.study = "cheaper_guidance"
  config.sample.guidance.update(scale=2.0, threshold=0.99)
  config.sample.guidance.exact_steps = 5
  config.sample.guidance.calibration_samples = 256
  if "tiny" in (arg or ""):
    config.sample.guidance.update(exact_steps=2, calibration_samples=16)
  return config
