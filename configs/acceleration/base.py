"""The acceleration family (`experiments.acceleration`): a method of
`experiments.acceleration.ACCELERATION_METHODS` applied to a trained run (source.workdir,
of the kind source.kind names: a digits run of configs/guidance/digits.py, or for DeeDiff
a masked-diffusion text run, configs/acceleration/deediff_text.py): DeeDiff's exits
trained on it, LD-Pruner's smaller network pruned from it and fine-tuned.

The config carries the run's own sections (data, path, objective, model, sample), so that
the result is a run the same configs load (`diffjax.runs.load`); the source run must match
them (a pruned model may be shallower or narrower).
"""
import ml_collections

from configs.guidance.base import guided_images_config

SOURCE_WORKDIR = "workdirs/guided_digits"


def acceleration_config(tiny: bool, method: dict):
  """The digits DiT's run sections, experiment "acceleration", config.source (workdir,
  step 0: the newest checkpoint, use_ema, kind "images") and config.method = `method`;
  tiny: seconds."""
  config = accelerated(guided_images_config(), method, SOURCE_WORKDIR, "images")
  config.train.update(batch_size=128, num_steps=1000, steps_per_call=50, log_every=100,
                      eval_every=1000, checkpoint_every=500)
  config.optim.update(learning_rate=1e-3, warmup_steps=50, schedule="constant")
  config.eval.update(num_samples=500, bpd_examples=0)
  if tiny:
    config.train.update(num_steps=4, batch_size=16, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.optim.warmup_steps = 0
    config.eval.num_samples = 20
    config.sample.num_steps = 4
  return config


def accelerated(config, method: dict, workdir: str, kind: str):
  """A source run's config (its data, path, objective, model and sample sections) made a
  run of the acceleration family: experiment "acceleration", config.source (workdir, step
  0: the newest checkpoint, use_ema, kind: a name of `SOURCE_KINDS`) and config.method."""
  config.experiment = "acceleration"
  config.source = ml_collections.ConfigDict(dict(workdir=workdir, step=0, use_ema=True,
                                                 kind=kind))
  config.method = ml_collections.ConfigDict(method)
  return config
