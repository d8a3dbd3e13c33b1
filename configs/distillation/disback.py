"""DisBack: distillation along the recorded degradation path of the teacher ("Distribution
Backtracking Builds A Faster Convergence Trajectory for Diffusion Distillation").

  python -m experiments.main --config=configs/distillation/disback.py:imbalanced \
      --workdir=workdirs/disback

The run's phases (`diffjax.distillation.disback`): fit (an oracle teacher's network copy,
method.fit_steps), degradation towards the initial generator (method.degrade_steps over
method.num_nodes recorded nodes), then backtracking: method.node_steps generator steps per
intermediate node and method.final_steps against the teacher itself; train.num_steps is
their sum (a smaller value stops the run earlier). The generator gets as many steps as in
`dmd.py`'s run (the plain method it is compared with); the fit and degradation steps come
on top. Variants as `f_distill.py`; tiny.
"""
from configs.common import parse_arg
from configs.distillation.matching import VARIANTS, matching_config
from diffjax.errors import ConfigError


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ConfigError(f"configs/distillation/disback.py takes one of {', '.join(VARIANTS)} "
                      f"(and optionally tiny); got {arg!r}.")
  variant = variants[0] if variants else "imbalanced"
  config = matching_config(variant, tiny, "disback", discriminator=False)
  exact = variant == "imbalanced"
  generator_steps = config.train.num_steps
  config.method.update(num_nodes=4, fit_steps=3000 if exact else 0, degrade_steps=1000,
                       node_steps=250)
  if variant != "imbalanced":
    config.method.fake_init = "teacher"
  if tiny:
    config.method.update(num_nodes=2, fit_steps=4 if exact else 0, degrade_steps=4,
                         node_steps=2)
  return set_generator_steps(config, generator_steps)


def set_generator_steps(config, generator_steps: int):
  """Gives the generator `generator_steps` backtracking steps in all (method.node_steps per
  intermediate node, the rest against the teacher) and train.num_steps the whole run."""
  options = config.method
  if generator_steps <= options.num_nodes * options.node_steps:
    raise ConfigError(f"DisBack needs more than num_nodes * node_steps = "
                      f"{options.num_nodes * options.node_steps} generator steps; got "
                      f"{generator_steps}.")
  options.final_steps = generator_steps - options.num_nodes * options.node_steps
  config.train.num_steps = (options.fit_steps + options.degrade_steps + options.num_nodes
                            + 1 + generator_steps)
  return config
