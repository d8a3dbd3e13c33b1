"""Experiments compose the diffjax library; `run` dispatches on `config.experiment`.

A family's module is imported only when one of its configs runs (`FAMILIES`): each one
loads its own stack (data sets, metrics, figures), and a usage error of the command line
should not wait for every family to load.
"""
import importlib
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

# config.experiment -> (module, function building its `Task` from the config).
FAMILIES = {
    "toy2d": ("experiments.toy2d", "build_task"),
    "images": ("experiments.images", "build_task"),
    "text": ("experiments.text", "build_task"),
    "guided_images": ("experiments.guidance", "build_guided_images"),
    "noisy_classifier": ("experiments.guidance", "build_noisy_classifier"),
    "timeseries": ("experiments.timeseries", "build_task"),
    "graphs": ("experiments.graphs", "build_task"),
    "hallucination": ("experiments.diagnostics", "build_hallucination"),
    "intrinsic_dimension": ("experiments.diagnostics", "build_intrinsic_dimension"),
    "h_space": ("experiments.h_space", "build_h_space"),
    "bridges": ("experiments.bridges", "build_task"),
    "distillation": ("experiments.distillation", "build_task"),
    "acceleration": ("experiments.acceleration", "build_task"),
    "few_shot": ("experiments.few_shot", "build_task"),
    "prospect": ("experiments.prospect", "build_task"),
    "concat": ("experiments.concat", "build_task"),
    "seismic": ("experiments.science", "build_seismic"),
    "ensembles": ("experiments.science", "build_seeds"),
    "population": ("experiments.science", "build_padts"),
    "market": ("experiments.science", "build_trades"),
    "synther": ("experiments.synther", "build_task"),
    "d2nwg": ("experiments.d2nwg", "build_task"),
    "trojan": ("experiments.safety", "build_trojan"),
    "erase": ("experiments.safety", "build_erase"),
    "unlearn_attack": ("experiments.safety", "build_attack"),
    "sda": ("experiments.safety", "build_sda"),
    "multitask": ("experiments.multimodal", "build_multitask"),
    "ddmi": ("experiments.multimodal", "build_ddmi"),
    "causal_diffae": ("experiments.multimodal", "build_causal"),
    "plug_and_play": ("experiments.plug_and_play", "build_task"),
    "ppap": ("experiments.ppap", "build_ppap"),
    "dfm": ("experiments.dfm", "build_dfm"),
}


def _task_builder(module, function):
  def build_task(config):
    return getattr(importlib.import_module(module), function)(config)
  build_task.__qualname__ = f"{module}.{function}"
  return build_task


EXPERIMENTS = Registry("experiment")
for _name, (_module, _function) in FAMILIES.items():
  EXPERIMENTS.register(_name, _task_builder(_module, _function))

MODES = ("train", "eval", "sample")


def __getattr__(name):
  """`experiments.<family module>` (e.g. `experiments.images.build_task`) imports it."""
  if name in {module.rsplit(".", 1)[1] for module, _ in FAMILIES.values()}:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
