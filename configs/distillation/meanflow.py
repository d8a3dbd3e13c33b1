"""MeanFlow ("Mean Flows for One-step Generative Modeling"): the average velocity u(x, t, s)
trained through the MeanFlow identity with one JVP, from the data (no teacher); 25% of the
pairs have s != t, logit-normal times, adaptive weights (p = 1).

  python -m experiments.main --config=configs/distillation/meanflow.py:moons \
      --workdir=workdirs/meanflow_moons

Data variants: moons (default), eight_gaussians, oracle (the exact 8-Gaussian target),
digits; `tiny` shrinks any of them to seconds. --config.method.velocity=teacher regresses
on a teacher's velocity instead of the pairs' (give teacher.kind and its workdir/mixture).
"""
from configs.distillation.base import method_config


def get_config(arg=None):
  return method_config(arg, "meanflow", False, {})
