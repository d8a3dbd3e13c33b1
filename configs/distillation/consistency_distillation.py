"""Consistency distillation ("Consistency Models", Algorithm 2) of a flow-matching teacher:
pairs of adjacent levels of an 18-level Karras grid, the lower one reached by one Heun step
of the teacher's probability-flow ODE (method.ode_solver: any deterministic registered
sampler), squared L2 distance.

  python -m experiments.main --config=configs/distillation/teacher.py:moons \
      --workdir=workdirs/teacher_moons
  python -m experiments.main --config=configs/distillation/consistency_distillation.py:moons \
      --workdir=workdirs/cd_moons

Data variants: moons (default), eight_gaussians (teachers from `teacher.py`), oracle (the
exact 8-Gaussian teacher), digits; `tiny` shrinks any of them to seconds (give a tiny
teacher: `:moons,tiny --config.teacher.workdir=DIR` with DIR from `teacher.py:moons,tiny`).
"""
from configs.distillation.base import method_config
from configs.distillation.consistency_training import PER_DATA


def get_config(arg=None):
  return method_config(arg, "consistency_distillation", True, {}, PER_DATA)
