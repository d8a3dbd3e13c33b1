"""MeanFlow ("Mean Flows for One-step Generative Modeling"): the average velocity u(x, t, s)
trained through the MeanFlow identity with one JVP, from the data (no teacher), adaptive
weights (p = 1).

  python -m experiments.main --config=configs/distillation/meanflow.py:moons \
      --workdir=workdirs/meanflow_moons

Data variants: moons (default), eight_gaussians, oracle (the exact 8-Gaussian target),
digits; `tiny` shrinks any of them to seconds. --config.method.velocity=teacher regresses
on a teacher's velocity instead of the pairs' (give teacher.kind and its workdir/mixture).

The digits keep the paper's times (logit-normal, s != t for 25% of the pairs). On the 2D
toys the MLP sees t itself (time_embedding "concat") and low-frequency features of the step
(step_frequency 10), and times are uniform with s != t for half the pairs: the loss
differentiates the network in t and s, and with the models' usual high-frequency time
features (up to 1000 rad per unit time) the one-step W2 on the moons stayed above 1.1
after 8,000 steps (0.34 with these settings; README, "Few-step and one-step generation").
"""
from configs.distillation.base import method_config
from diffjax.distillation.meanflow import DEFAULTS

TOY_METHOD = dict(time_sampler="uniform", ratio=0.5)


def get_config(arg=None):
  toys = {data: TOY_METHOD for data in ("moons", "eight_gaussians", "oracle")}
  config = method_config(arg, "meanflow", False, DEFAULTS, toys)
  # The network's step input h = s - t (diffjax.models.step_conditioned).
  config.model.update(step_dim=32, step_embedding="sinusoidal", step_frequency=1000.0)
  if config.model.name == "mlp":
    config.model.update(time_embedding="concat", step_frequency=10.0)
  return config
