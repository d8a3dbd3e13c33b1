"""Consistency training with the improved recipe ("Improved Techniques for Training
Consistency Models"): no teacher; pseudo-Huber distance, 1 / (sigma_{i+1} - sigma_i)
weights, log-normal levels and the 10 -> 1280 level curriculum over the run.

  python -m experiments.main --config=configs/distillation/consistency_training.py:moons \
      --workdir=workdirs/ct_moons

Data variants: moons (default), eight_gaussians, oracle (the exact 8-Gaussian target),
digits; `tiny` shrinks any of them to seconds (e.g. `:moons,tiny`).
"""
from configs.distillation.base import method_config
from diffjax.distillation.consistency import CT_DEFAULTS

# sigma_data is the data's standard deviation (EDM's preconditioning).
PER_DATA = {"moons": dict(sigma_data=2.2), "eight_gaussians": dict(sigma_data=3.6),
            "oracle": dict(sigma_data=3.6), "digits": dict(sigma_data=0.5)}


def get_config(arg=None):
  return method_config(arg, "consistency_training", False, CT_DEFAULTS, PER_DATA)
