"""The engine's config schema: every key the engine reads, checked before a workdir is
touched.

`validate_engine_config(config, num_devices)` raises `diffjax.errors.ConfigError` with one
line naming the first bad key, its value and what is valid. It checks the keys the engine
reads (seed, train.*, optim.*, eval.use_ema): their presence, type, range, names (the
optimizer and schedule registries) and the rules that tie them together (the batch splits
evenly over devices and micro-batches, weight decay needs an optimizer that applies it).
Keys of an experiment's components (model.*, data.*, eval.num_samples, ...) are checked by
the experiment when it builds its task.
"""
import dataclasses
import math
import numbers
from typing import Any, Callable, Optional, Tuple

import ml_collections

from diffjax.errors import ConfigError
from diffjax.train.optim import OPTIMIZERS, SCHEDULES


@dataclasses.dataclass(frozen=True)
class Key:
  """One config key: `kind` is "int", "float", "bool" or "name" (or "ints", "floats",
  "names": a list whose every item is checked so); `low`/`high` bound the
  value (inclusive unless `open_low` / `open_high`); `names` gives the valid names of a
  "name" key; `meaning` explains special values."""
  path: str
  kind: str
  low: Optional[float] = None
  high: Optional[float] = None
  open_low: bool = False
  open_high: bool = False
  names: Optional[Callable[[], Tuple[str, ...]]] = None
  meaning: str = ""


SCHEMA = (
    Key("seed", "int", 0, 2 ** 32 - 1),
    Key("train.num_steps", "int", 1, meaning="training steps of the run"),
    Key("train.batch_size", "int", 1, meaning="the global batch"),
    Key("train.steps_per_call", "int", 1, meaning="training steps per compiled call"),
    Key("train.grad_accum_steps", "int", 1, meaning="micro-batches per step"),
    Key("train.model_axis_size", "int", 1, meaning="devices sharing each parameter"),
    Key("train.log_every", "int", 0, meaning="0: only at the end"),
    Key("train.eval_every", "int", 0, meaning="0: only at the end"),
    Key("train.checkpoint_every", "int", 0, meaning="0: only at the end"),
    Key("train.keep_checkpoints", "int", 1, meaning="checkpoints kept on disk"),
    Key("optim.name", "name", names=OPTIMIZERS.names),
    Key("optim.learning_rate", "float", 0.0, open_low=True),
    Key("optim.schedule", "name", names=SCHEDULES.names),
    Key("optim.warmup_steps", "int", 0),
    Key("optim.end_lr_factor", "float", 0.0, 1.0),
    Key("optim.grad_clip", "float", 0.0, meaning="0: no clipping"),
    Key("optim.weight_decay", "float", 0.0),
    Key("optim.b1", "float", 0.0, 1.0, open_high=True),
    Key("optim.b2", "float", 0.0, 1.0, open_high=True),
    Key("optim.ema_decay", "float", 0.0, 1.0),
    Key("optim.decay_steps", "int", 0, meaning="0: train.num_steps"),
    Key("eval.use_ema", "bool"),
)


def _lookup(config, path: str):
  node = config
  for part in path.split("."):
    try:
      node = node[part]
    except (KeyError, TypeError, AttributeError):
      raise ConfigError(
          f"The config has no {path}, which the training engine reads; start a config "
          "from diffjax.train.defaults.engine_config(), which gives every engine key."
      ) from None
  return node


def _range_text(key: Key) -> str:
  if key.low is None and key.high is None:
    return "(any)"
  if key.low is not None and key.high is not None:
    return (f"in {'(' if key.open_low else '['}{key.low:g}, {key.high:g}"
            f"{')' if key.open_high else ']'}")
  if key.low is None:
    return f"{'<' if key.open_high else '<='} {key.high:g}"
  return f"{'>' if key.open_low else '>='} {key.low:g}"


def _check(key: Key, value: Any):
  where = f"{key.path}={value!r}"
  if key.kind in ("ints", "floats", "names"):   # A sequence, each item checked alike.
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
      raise ConfigError(f"{where} must be a list of {key.kind[:-1]}s, e.g. "
                        f"--config.{key.path}='(1, 2)'.")
    item = dataclasses.replace(key, kind=key.kind[:-1])
    for element in value:
      _check(item, element)
    return
  if key.kind == "bool":
    if not isinstance(value, bool):
      raise ConfigError(f"{where} must be True or False.")
    return
  if key.kind == "name":
    names = key.names()
    if not isinstance(value, str) or value not in names:
      raise ConfigError(f"{where} is not one of the valid names: {', '.join(names)}.")
    return
  if key.kind == "int":
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
      raise ConfigError(f"{where} must be an integer {_range_text(key)}.")
  elif isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ConfigError(f"{where} must be a number {_range_text(key)}.")
  elif not math.isfinite(value):
    raise ConfigError(f"{where} must be a finite number {_range_text(key)}.")
  too_low = key.low is not None and (value <= key.low if key.open_low else value < key.low)
  too_high = key.high is not None and (value >= key.high if key.open_high
                                       else value > key.high)
  if too_low or too_high:
    meaning = f" ({key.meaning})" if key.meaning else ""
    raise ConfigError(f"{where} is out of range: it must be {_range_text(key)}{meaning}.")


def check_keys(config, keys):
  """Checks the `Key`s of an experiment's components that `config` has (a key the config
  lacks is left to the component's default): one ConfigError line for the first bad one."""
  for key in keys:
    try:
      value = _lookup(config, key.path)
    except ConfigError:
      continue
    _check(key, value)


def optimizer_section(config, section: str, who: str):
  """The optimizer keys of a player's config section `section` (e.g. "optim_fake"): the
  keys it gives over config.optim's (optim.ema_decay is the run's, not a player's). Raises
  ConfigError naming a missing section, an unknown key or a bad value."""
  optim = _lookup(config, "optim")
  given = config.get(section) if hasattr(config, "get") else None
  if not hasattr(given, "items"):
    raise ConfigError(f"{who}: optimizer={section!r} names no config section: add "
                      f"config.{section} with the optimizer keys it changes (e.g. "
                      "learning_rate), or give an optax GradientTransformation.")
  keys = {key.path.split(".", 1)[1]: key for key in SCHEMA
          if key.path.startswith("optim.") and key.path != "optim.ema_decay"}
  merged = dict(optim.items())
  for name, value in given.items():
    if name not in keys:
      raise ConfigError(f"config.{section}.{name} is not an optimizer key; valid: "
                        f"{', '.join(sorted(keys))}.")
    _check(dataclasses.replace(keys[name], path=f"{section}.{name}"), value)
    merged[name] = value
  if merged["weight_decay"] and merged["name"] == "adam":
    raise ConfigError(f"{section}.weight_decay={merged['weight_decay']!r} has no effect "
                      f"with name='adam'; use {section}.name='adamw' (or set it to 0).")
  return ml_collections.ConfigDict(merged)


def validate_engine_config(config, num_devices: int):
  """Checks every engine key of `config` for a run on `num_devices` devices.

  Raises:
    ConfigError: one line naming the key, its value and what is valid.
  """
  for key in SCHEMA:
    _check(key, _lookup(config, key.path))
  tc = config.train
  if num_devices % tc.model_axis_size:
    valid = [k for k in range(1, num_devices + 1) if num_devices % k == 0]
    raise ConfigError(f"train.model_axis_size={tc.model_axis_size} must divide the number "
                      f"of devices ({num_devices}); valid: {valid}.")
  per_step = num_devices * tc.grad_accum_steps
  if tc.batch_size % per_step:
    what = (f"the number of devices ({num_devices})" if tc.grad_accum_steps == 1 else
            f"train.grad_accum_steps x devices = {tc.grad_accum_steps} x {num_devices}")
    nearest = max(per_step, round(tc.batch_size / per_step) * per_step)
    raise ConfigError(f"train.batch_size={tc.batch_size} must be divisible by {what}; "
                      f"e.g. {nearest}.")
  if config.optim.weight_decay and config.optim.name == "adam":
    raise ConfigError(f"optim.weight_decay={config.optim.weight_decay!r} has no effect "
                      "with optim.name='adam'; use optim.name='adamw' (or set it to 0).")
