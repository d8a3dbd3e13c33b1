"""Experiments compose the diffjax library; `run` dispatches on `config.experiment`."""
from diffjax import train as engine
from diffjax.registry import Registry
from experiments import bridges, images, toy2d

EXPERIMENTS = Registry("experiment")
EXPERIMENTS.register("toy2d", toy2d.build_task)
EXPERIMENTS.register("images", images.build_task)
EXPERIMENTS.register("bridges", bridges.build_task)

MODES = ("train", "eval", "sample")


def run(config, workdir, mode="train", *, overwrite=False, devices=None):
  """Builds the experiment's task and runs `mode` in `workdir`."""
  if mode not in MODES:
    raise ValueError(f"Unknown mode {mode!r}; valid modes are: {', '.join(MODES)}.")
  task = EXPERIMENTS.get(config.experiment)(config)
  if mode == "train":
    return engine.train(config, workdir, task, devices=devices, overwrite=overwrite)
  if mode == "eval":
    return engine.evaluate(config, workdir, task, devices=devices)
  return engine.sample(config, workdir, task, devices=devices)
