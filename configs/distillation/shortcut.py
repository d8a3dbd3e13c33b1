"""Shortcut models ("One Step Diffusion via Shortcut Models"): s(x_t, t, d) trained by flow
matching at d = 0 and self-consistency of steps 2d = 1, 1/2, ..., 1/64 against two steps of
d on a quarter of each batch, from the data (no teacher).

  python -m experiments.main --config=configs/distillation/shortcut.py:moons \
      --workdir=workdirs/shortcut_moons

Data variants: moons (default), eight_gaussians, oracle (the exact 8-Gaussian target),
digits; `tiny` shrinks any of them to seconds. --config.method.velocity=teacher regresses
on a teacher's velocity instead of the pairs' (give teacher.kind and its workdir/mixture).
"""
from configs.distillation.base import method_config
from diffjax.distillation.shortcut import DEFAULTS


def get_config(arg=None):
  config = method_config(arg, "shortcut", False, DEFAULTS)
  # The network's step input h = s - t (diffjax.models.step_conditioned).
  config.model.update(step_dim=32, step_embedding="sinusoidal", step_frequency=1000.0)
  return config
