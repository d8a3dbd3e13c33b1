"""Experiments compose the diffjax library; `run` dispatches on `config.experiment`."""
import os
import signal
import sys

if sys.argv[:1] == ["-m"]:
  # `python -m experiments.main` imports this package first, which takes seconds: a SIGTERM
  # (preemption) meanwhile ends the command cleanly, before anything is written.
  # experiments.main installs the handler of the run once it starts.
  def _stop_while_starting(signum, frame):
    del frame
    print(f"Stopped on request (signal {signum}) while starting; nothing was changed.",
          file=sys.stderr, flush=True)
    os._exit(0)  # pylint: disable=protected-access  (an exception could be ignored)
  signal.signal(signal.SIGTERM, _stop_while_starting)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from diffjax import train as engine  # pylint: disable=g-import-not-at-top
from diffjax.errors import ConfigError  # pylint: disable=g-import-not-at-top
from diffjax.registry import Registry  # pylint: disable=g-import-not-at-top
from experiments import (bridges, diagnostics, graphs, guidance,  # pylint: disable=g-import-not-at-top
                         h_space, images, text, timeseries, toy2d)

EXPERIMENTS = Registry("experiment")
EXPERIMENTS.register("toy2d", toy2d.build_task)
EXPERIMENTS.register("images", images.build_task)
EXPERIMENTS.register("text", text.build_task)
EXPERIMENTS.register("guided_images", guidance.build_guided_images)
EXPERIMENTS.register("noisy_classifier", guidance.build_noisy_classifier)
EXPERIMENTS.register("timeseries", timeseries.build_task)
EXPERIMENTS.register("graphs", graphs.build_task)
EXPERIMENTS.register("hallucination", diagnostics.build_hallucination)
EXPERIMENTS.register("intrinsic_dimension", diagnostics.build_intrinsic_dimension)
EXPERIMENTS.register("h_space", h_space.build_h_space)
EXPERIMENTS.register("bridges", bridges.build_task)

MODES = ("train", "eval", "sample")


def run(config, workdir, mode="train", *, overwrite=False, devices=None):
  """Builds the experiment's task and runs `mode` in `workdir`.

  Everything is validated before the workdir is touched: the engine's keys
  (`diffjax.train.validate_engine_config`), then the components' by building the task
  (ConfigError / UnknownComponentError), then the workdir.
  """
  if mode not in MODES:
    raise ConfigError(f"mode={mode!r} is not one of: {', '.join(MODES)}.")
  engine.validate_engine_config(config, len(jax.devices() if devices is None else devices))
  if "experiment" not in config:
    raise ConfigError("The config has no key 'experiment'; valid experiments: "
                      f"{', '.join(EXPERIMENTS.names())}.")
  task = EXPERIMENTS.get(config.experiment)(config)
  if mode == "train":
    return engine.train(config, workdir, task, devices=devices, overwrite=overwrite)
  if mode == "eval":
    return engine.evaluate(config, workdir, task, devices=devices)
  return engine.sample(config, workdir, task, devices=devices)
