"""Consistency distillation ("Consistency Models", Algorithm 2) of a flow-matching teacher:
pairs of adjacent levels of a 40-level Karras grid, the lower one reached by one Heun step
of the teacher's probability-flow ODE (method.ode_solver: any deterministic registered
sampler), with the improved recipe's loss (pseudo-Huber distance, 1 / (sigma_{i+1} -
sigma_i) weights, log-normal levels). The paper's own choice (18 levels drawn uniformly,
unit weights, squared L2: the library's defaults) gave on the moons after 8,000 steps W2
0.36 / 0.41 / 0.60 at 1 / 2 / 4 steps, against 0.28 / 0.24 / 0.31 with these settings.

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
from diffjax.distillation.consistency import CD_DEFAULTS


IMPROVED = dict(num_levels=40, distance="pseudo_huber", weighting="inverse_gap",
                level_sampling="lognormal")


def get_config(arg=None):
  per_data = {data: dict(IMPROVED, **options) for data, options in PER_DATA.items()}
  return method_config(arg, "consistency_distillation", True, CD_DEFAULTS, per_data)
