"""diffusers checkpoints <-> diffjax models: read and write the folders `save_pretrained`
writes (config.json + diffusion_pytorch_model.safetensors, and a scheduler_config.json),
with numpy and safetensors only (no torch).

  pretrained = from_diffusers("ddpm-cifar10-32")   # a model folder, or a pipeline folder
  pretrained.model.apply(pretrained.params, x, t)  # diffusers_unet / diffusers_dit, x NHWC
  pretrained.schedule                              # its DDPMSchedule (None without one)
  to_diffusers("exported", params, pretrained.config, pretrained.schedule)
  UNet2DModel.from_pretrained("exported")          # in PyTorch

Layouts: convolution kernels OIHW (PyTorch) <-> HWIO (flax), linear weights (out, in) <->
(in, out), norm weights <-> `scale`, embedding tables as they are. Parameter names follow
diffusers' (`diffjax.models.diffusers_layers`); the attention names of old checkpoints
(query, key, value, proj_attn) are read as to_q, to_k, to_v, to_out.0, as diffusers does.
Every tensor is checked: one that is missing, left over or of the wrong shape, an
unsupported block type or a folder without config.json fails with one ConfigError line
naming it. Keys of config.json diffjax does not read are ignored with a log line, as
diffusers does.

`build_model(name, shape, pretrained=folder, ...)` (`diffjax.models.build_model`) builds
the folder's model whose `init` returns the converted parameters; `diffjax.runs.from_diffusers`
wraps a folder as a trained run.
"""
import importlib
import inspect
import json
import os
import re
from typing import Any, Dict, NamedTuple, Optional, Tuple

import jax
import ml_collections
import numpy as np
from absl import logging

from diffjax.errors import ConfigError
from diffjax.models.base import MODELS, Model
from diffjax.models.diffusers_layers import LIST_SCOPES
from diffjax.paths.ddpm import (DDPMSchedule, find_scheduler_config, read_json_config,
                                read_schedule)

# diffusers class -> the registered diffjax model of the same structure.
CLASSES = {"UNet2DModel": "diffusers_unet", "DiTTransformer2DModel": "diffusers_dit"}
WEIGHTS = "diffusion_pytorch_model.safetensors"
WEIGHTS_INDEX = WEIGHTS + ".index.json"
# Pipeline folders (model_index.json) keep the denoiser in one of these subfolders.
DENOISER_FOLDERS = ("unet", "transformer")
# Options of a pretrained model that choose how it runs, not what it is.
RUNTIME_OPTIONS = ("dtype", "remat", "dropout", "num_train_timesteps")
# Config keys that are not the builder's keyword options.
_SHAPE_KEYS = ("sample_size", "in_channels", "out_channels")
_LEAVES = {"kernel": "weight", "scale": "weight", "embedding": "weight", "bias": "bias"}
_DEPRECATED_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v",
                         "proj_attn": "to_out.0"}
_DEPRECATED = re.compile(r"^(.*\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$")


class Pretrained(NamedTuple):
  """A converted diffusers model.

  model: the diffjax `Model` (registered as `name`), whose init returns `params`;
  params: its parameters (a flax tree of float32 arrays);
  name: "diffusers_unet" or "diffusers_dit"; data_shape: (H, W, C); num_classes: the
  labels it takes (0: unconditional); options: the builder's keyword options;
  config: the diffusers config (config.json as a dict); schedule: the folder's
  `DDPMSchedule`, None if it has no scheduler config; folder: the model's folder.
  """
  model: Model
  params: Any
  name: str
  data_shape: Tuple[int, int, int]
  num_classes: int
  options: Dict[str, Any]
  config: Dict[str, Any]
  schedule: Optional[DDPMSchedule]
  folder: str


# ----- folders and config.json -----

def model_folder(folder) -> str:
  """The folder holding the model's config.json: `folder`, or the unet/ or transformer/
  subfolder of a pipeline folder (model_index.json)."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise ConfigError(f"{folder} is not a folder: give a diffusers model folder "
                      "(config.json and diffusion_pytorch_model.safetensors).")
  if os.path.isfile(os.path.join(folder, "config.json")):
    return folder
  for sub in DENOISER_FOLDERS:
    if os.path.isfile(os.path.join(folder, sub, "config.json")):
      return os.path.join(folder, sub)
  raise ConfigError(f"{folder} has no config.json (nor unet/ or transformer/config.json): "
                    "it is not a diffusers model folder.")


def _builder_keys(name):
  parameters = inspect.signature(MODELS.get(name)).parameters
  return tuple(k for k, p in parameters.items() if p.kind == p.KEYWORD_ONLY)


def architecture(config: Dict[str, Any], where="config.json"):
  """(name, data_shape, options) of a diffusers config dict: the registered diffjax model,
  the image shape (H, W, C) and the builder's keyword options."""
  cls = config.get("_class_name")
  if cls not in CLASSES:
    raise ConfigError(f"{where}: _class_name {cls!r} is not a model diffjax converts; "
                      f"valid: {', '.join(CLASSES)}.")
  name = CLASSES[cls]
  size = config.get("sample_size", 32)
  height, width = (size, size) if isinstance(size, int) else tuple(size)
  channels = config.get("in_channels", 3 if name == "diffusers_unet" else 4)
  options = {"out_channels": config.get("out_channels")}
  if name == "diffusers_unet":
    embeds = config.get("num_class_embeds")
    if embeds is not None and embeds < 2:
      raise ConfigError(f"{where}: num_class_embeds={embeds}; diffjax reads the last class "
                        "embedding as the null class, so it needs at least 2.")
    options["num_classes"] = 0 if embeds is None else embeds - 1
    consumed = _SHAPE_KEYS + ("num_class_embeds",)
  else:
    options["num_classes"] = config.get("num_embeds_ada_norm") or 0
    consumed = _SHAPE_KEYS + ("num_embeds_ada_norm",)
  accepted = _builder_keys(name)
  ignored = []
  for key, value in config.items():
    if key.startswith("_") or key in consumed or (key == "num_train_timesteps"
                                                  and value is None):
      continue
    if key in accepted:
      options[key] = tuple(value) if isinstance(value, list) else value
    else:
      ignored.append(key)
  if ignored:
    logging.info("%s: ignoring keys diffjax does not read: %s.", where, ", ".join(ignored))
  return name, (height, width, channels), options


def diffusers_config(name: str, data_shape, options: Dict[str, Any]) -> Dict[str, Any]:
  """The diffusers config dict of the diffjax model `name` (diffusers_unet / diffusers_dit)
  for images data_shape (H, W, C) with builder options `options` (the inverse of
  `architecture`; runtime options dropped)."""
  cls = {v: k for k, v in CLASSES.items()}.get(name)
  if cls is None:
    raise ConfigError(f"model {name!r} has no diffusers counterpart; valid: "
                      f"{', '.join(CLASSES.values())}.")
  height, width, channels = data_shape
  signature = inspect.signature(MODELS.get(name)).parameters
  values = {k: p.default for k, p in signature.items() if p.kind == p.KEYWORD_ONLY}
  values.update(options)
  num_classes = values.pop("num_classes")
  config = {"_class_name": cls, "sample_size": height if height == width else [height, width],
            "in_channels": channels,
            "out_channels": values.pop("out_channels") or channels}
  if name == "diffusers_unet":
    config["num_class_embeds"] = num_classes + 1 if num_classes else None
  else:
    config["num_embeds_ada_norm"] = num_classes
  for key in ("dtype", "remat", "num_train_timesteps"):   # Runtime, or the scheduler's.
    values.pop(key)
  config.update({k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})
  return config


# ----- tensors -----

def diffusers_key(path: Tuple[str, ...]) -> str:
  """The diffusers state-dict key of a flax parameter path, e.g. (down_blocks_0, resnets_1,
  norm1, scale) -> down_blocks.0.resnets.1.norm1.weight."""
  parts = []
  for part in path[:-1]:
    scope, _, index = part.rpartition("_")
    parts.append(f"{scope}.{index}" if scope in LIST_SCOPES and index.isdigit() else part)
  return ".".join(parts + [_LEAVES[path[-1]]])


def to_flax_layout(tensor: np.ndarray, leaf: str) -> np.ndarray:
  if leaf == "kernel" and tensor.ndim == 4:
    return tensor.transpose(2, 3, 1, 0)          # OIHW -> HWIO
  if leaf == "kernel" and tensor.ndim == 2:
    return tensor.T                              # (out, in) -> (in, out)
  return tensor


def to_torch_layout(array: np.ndarray, leaf: str) -> np.ndarray:
  if leaf == "kernel" and array.ndim == 4:
    return array.transpose(3, 2, 0, 1)           # HWIO -> OIHW
  if leaf == "kernel" and array.ndim == 2:
    return array.T
  return array


def _leaves(tree, prefix=()):
  if isinstance(tree, dict):
    for key in sorted(tree):
      yield from _leaves(tree[key], prefix + (key,))
  else:
    yield prefix, tree


def _set(tree, path, value):
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _upgrade_names(tensors):
  """Old checkpoints' attention names (query, key, value, proj_attn) -> to_q, ..."""
  renamed = {}
  for key, value in tensors.items():
    match = _DEPRECATED.match(key)
    if match:
      key = f"{match.group(1)}.{_DEPRECATED_ATTENTION[match.group(2)]}.{match.group(3)}"
    renamed[key] = value
  return renamed


def _listing(keys, limit=4):
  keys = sorted(keys)
  more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
  return ", ".join(keys[:limit]) + more


def convert_state_dict(tensors: Dict[str, np.ndarray], abstract_params, where: str):
  """The flax parameter tree (float32 numpy) of a diffusers state dict for a model whose
  parameters have the shapes of `abstract_params`; ConfigError for a missing, extra or
  misshapen tensor."""
  tensors = _upgrade_names(tensors)
  expected = {diffusers_key(path): (path, leaf.shape) for path, leaf in _leaves(abstract_params)}
  missing = set(expected) - set(tensors)
  if missing:
    raise ConfigError(f"{where} lacks {len(missing)} tensor(s) the model's config needs: "
                      f"{_listing(missing)}.")
  extra = set(tensors) - set(expected)
  if extra:
    raise ConfigError(f"{where} has {len(extra)} tensor(s) the model's config does not "
                      f"use: {_listing(extra)}.")
  params = {}
  for key, (path, shape) in expected.items():
    value = to_flax_layout(np.asarray(tensors[key]), path[-1])
    if value.shape != tuple(shape):
      torch_shape = to_torch_layout(np.zeros(shape, np.int8), path[-1]).shape
      raise ConfigError(f"{where}: tensor {key} has shape {tuple(tensors[key].shape)}; the "
                        f"model's config gives {torch_shape}.")
    _set(params, path, np.ascontiguousarray(value, np.float32))
  return params


def state_dict(params) -> Dict[str, np.ndarray]:
  """The diffusers state dict (torch layouts, float32 numpy) of a flax parameter tree."""
  return {diffusers_key(path): np.ascontiguousarray(to_torch_layout(np.asarray(leaf), path[-1]))
          for path, leaf in _leaves(jax.device_get(params))}


def _safetensors():
  """safetensors.numpy, an optional dependency (the [pretrained] extra) loaded when used."""
  try:
    return importlib.import_module("safetensors.numpy")
  except ImportError:
    raise ConfigError("Reading or writing diffusers checkpoints needs safetensors: "
                      'pip install "diffjax[pretrained]".') from None


def read_tensors(folder: str) -> Dict[str, np.ndarray]:
  """The tensors of diffusion_pytorch_model.safetensors in `folder` (or of its shards)."""
  load_file = _safetensors().load_file
  single, index = os.path.join(folder, WEIGHTS), os.path.join(folder, WEIGHTS_INDEX)
  if os.path.isfile(single):
    files = [single]
  elif os.path.isfile(index):
    weight_map = read_json_config(index).get("weight_map", {})
    files = [os.path.join(folder, f) for f in sorted(set(weight_map.values()))]
  else:
    legacy = [f for f in os.listdir(folder) if f.endswith(".bin")]
    hint = (f" (it has {legacy[0]}: convert it with diffusers, "
            "model.save_pretrained(folder, safe_serialization=True))" if legacy else "")
    raise ConfigError(f"{folder} has no {WEIGHTS}{hint}.")
  tensors = {}
  for path in files:
    try:
      tensors.update(load_file(path))
    except Exception as error:  # safetensors raises its own error types for damaged files.
      raise ConfigError(f"{path} is not a readable safetensors file: {error}") from None
  return tensors


# ----- the public conversions -----

def _abstract_params(model: Model):
  return jax.eval_shape(model.init, jax.random.PRNGKey(0))


def _loaded_init(params) -> Any:
  """init(key) returning `params` (host arrays): a host callback, so that a jitted init
  does not embed the weights in the program as constants."""
  shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), params)
  return lambda key: jax.pure_callback(lambda _: params, shapes, key)


def _check_options(name, options, checkpoint, folder):
  """Options given with model.pretrained may choose how it runs (RUNTIME_OPTIONS) or
  repeat the checkpoint's values; num_classes=0 uses a conditional model unconditionally."""
  for key, value in options.items():
    if key in RUNTIME_OPTIONS or (key == "num_classes" and not value):
      continue
    if key not in checkpoint:
      raise ConfigError(f"model.{key} is not an option of {name}; with model.pretrained "
                        f"the architecture comes from {folder}/config.json.")
    given = tuple(value) if isinstance(value, list) else value
    if given != checkpoint[key]:
      raise ConfigError(f"model.{key}={value!r} but the checkpoint in {folder} has "
                        f"{checkpoint[key]!r}; drop the key (the checkpoint's config.json "
                        "gives the architecture).")


def from_diffusers(folder, *, name: Optional[str] = None, data_shape=None,
                   **options) -> Pretrained:
  """Reads a diffusers folder (model or pipeline) into a `Pretrained`.

  Args:
    folder: the folder `save_pretrained` wrote (or a pipeline folder with unet/ or
      transformer/); its scheduler config, if any, gives `schedule` and the network's
      num_train_timesteps.
    name, data_shape: the model and image shape the caller expects (ConfigError if the
      checkpoint is another); None: whatever it is.
    **options: runtime options (dtype, remat, dropout, num_train_timesteps) or values equal
      to the checkpoint's.
  """
  given = os.fspath(folder)
  folder = model_folder(given)
  where = os.path.join(folder, "config.json")
  config = read_json_config(where)
  kind, shape, checkpoint = architecture(config, where)
  if name is not None and name != kind:
    raise ConfigError(f"model.name={name!r} but {folder} holds a {config['_class_name']} "
                      f"(model.name={kind}).")
  if data_shape is not None and tuple(data_shape) != shape:
    raise ConfigError(f"The data have shape {tuple(data_shape)} but the checkpoint in "
                      f"{folder} takes images of shape {shape} (sample_size, in_channels).")
  _check_options(kind, options, checkpoint, folder)
  found = find_scheduler_config(given) or find_scheduler_config(folder)
  schedule = None if found is None else read_schedule(found)
  runtime = {k: v for k, v in options.items() if k in RUNTIME_OPTIONS}
  if schedule is not None:
    runtime.setdefault("num_train_timesteps", schedule.num_train_timesteps)
  built = MODELS.get(kind)(shape, **{**checkpoint, **runtime})
  tensors = read_tensors(folder)
  params = convert_state_dict(tensors, _abstract_params(built),
                              os.path.join(folder, WEIGHTS))
  model = Model(_loaded_init(params), built.apply)
  return Pretrained(model, jax.tree.map(jax.numpy.asarray, params), kind, shape,
                    checkpoint["num_classes"], checkpoint, config, schedule, folder)


def pretrained_model(name: str, data_shape, folder, **options) -> Model:
  """The Model of `build_model(name, data_shape, pretrained=folder, **options)`."""
  return from_diffusers(folder, name=name, data_shape=data_shape, **options).model


def to_diffusers(folder, params, config: Dict[str, Any],
                 schedule: Optional[DDPMSchedule] = None) -> str:
  """Writes `params` as a diffusers model folder: config.json (`config`, a diffusers config
  dict such as `Pretrained.config` or `diffusers_config(...)`), the safetensors weights
  and, given a schedule, scheduler_config.json (a DDPMScheduler). Returns the folder."""
  save_file = _safetensors().save_file
  name, shape, options = architecture(config, "config")
  expected = _abstract_params(MODELS.get(name)(shape, **options))
  tensors = state_dict(params)
  convert_state_dict(tensors, expected, "the parameters")   # Checks names and shapes.
  folder = os.fspath(folder)
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "config.json"), "w") as f:
    json.dump(config, f, indent=2, sort_keys=True)
  save_file(tensors, os.path.join(folder, WEIGHTS))
  if schedule is not None:
    with open(os.path.join(folder, "scheduler_config.json"), "w") as f:
      json.dump(scheduler_config(schedule), f, indent=2, sort_keys=True)
  return folder


def scheduler_config(schedule: DDPMSchedule) -> Dict[str, Any]:
  """A DDPMScheduler config with the schedule's betas (as trained_betas) and settings."""
  return {"_class_name": "DDPMScheduler",
          "num_train_timesteps": schedule.num_train_timesteps,
          "trained_betas": schedule.betas.tolist(),
          "prediction_type": schedule.prediction_type,
          "timestep_spacing": schedule.timestep_spacing,
          "steps_offset": schedule.steps_offset, "clip_sample": False}


def run_config(folder, *, solver="ddim", num_steps=50, dtype="float32"):
  """(config, (shape, num_classes)) of a diffusers folder as a diffjax run: the
  ddpm_discrete path of its scheduler, score matching with its prediction type, the
  converted model, and `solver` with `num_steps` steps."""
  pretrained_folder = os.fspath(folder)
  location = model_folder(pretrained_folder)
  kind, shape, checkpoint = architecture(read_json_config(os.path.join(location, "config.json")),
                                         os.path.join(location, "config.json"))
  found = find_scheduler_config(pretrained_folder) or find_scheduler_config(location)
  if found is None:
    raise ConfigError(f"{pretrained_folder} holds no scheduler_config.json: save the "
                      "scheduler beside the model (scheduler.save_pretrained(folder)).")
  schedule = read_schedule(found)
  config = ml_collections.ConfigDict(dict(
      model=dict(name=kind, pretrained=pretrained_folder, num_classes=checkpoint["num_classes"],
                 dtype=dtype),
      path=dict(name="ddpm_discrete", scheduler=found),
      objective=dict(name="score_matching", prediction=schedule.prediction),
      sample=dict(solver=solver, num_steps=num_steps)))
  return config, (shape, checkpoint["num_classes"])
