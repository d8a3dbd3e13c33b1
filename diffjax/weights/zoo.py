"""A weight zoo: trained networks of one architecture with the task each was trained on,
trained here or read from an `.npz` file.

File format: for network j, arrays "net{j}.w{i}" (in, out) and "net{j}.b{i}" (out,) per
layer i, and "tasks" (M,) ints, the task index of each network. `load_zoo` refuses (one
`ConfigError` line) a file whose networks differ in architecture, which no single
flattening could hold.
"""
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.npz_files import read_npz
from diffjax.errors import ConfigError
from diffjax.weights.classifier import fit_classifier, init_classifier
from diffjax.weights.layout import (WeightLayout, flatten_weights, unflatten_weights,
                                    weight_layout)


class Zoo(NamedTuple):
  """vectors (M, P) flattened networks (`diffjax.weights.layout`), tasks (M,) ints."""
  vectors: np.ndarray
  tasks: np.ndarray
  layout: WeightLayout


def train_zoo(key, tasks, layout: WeightLayout, models_per_task: int, *, epochs: int,
              batch_size: int, learning_rate: float, shared_init: bool = False) -> Zoo:
  """`models_per_task` networks of `layout` per task, each with its own order of the
  data and, unless `shared_init`, its own initialisation (shared_init: one
  initialisation for the whole zoo, as zoos grown from one pretrained or seeded network
  are, so that members differ by training rather than by a permutation of hidden
  units); tasks a list of `ClassificationTask`s with equal shapes."""
  sizes = layout.layer_sizes

  def train_one(k_init, k_fit, x, y):
    params = fit_classifier(init_classifier(k_init, sizes), k_fit, x, y, epochs=epochs,
                            batch_size=batch_size, learning_rate=learning_rate)
    return flatten_weights(params)

  train_many = jax.jit(jax.vmap(train_one, (0, 0, None, None)))
  k_shared, key = jax.random.split(key)
  vectors, labels = [], []
  for t, task in enumerate(tasks):
    k_init, k_fit = jax.random.split(jax.random.fold_in(key, t))
    init_keys = (jnp.broadcast_to(k_shared, (models_per_task, *k_shared.shape))
                 if shared_init else jax.random.split(k_init, models_per_task))
    vectors.append(np.asarray(train_many(init_keys, jax.random.split(k_fit, models_per_task),
                                         jnp.asarray(task.x_train),
                                         jnp.asarray(task.y_train))))
    labels.append(np.full(models_per_task, t, np.int32))
  return Zoo(np.concatenate(vectors), np.concatenate(labels), layout)


def save_zoo(path: str, zoo: Zoo):
  """Writes the zoo in the module's file format."""
  arrays = {"tasks": zoo.tasks}
  for j, vector in enumerate(zoo.vectors):
    for i, (w, b) in enumerate(unflatten_weights(np.asarray(vector), zoo.layout)):
      arrays[f"net{j}.w{i}"], arrays[f"net{j}.b{i}"] = w, b
  np.savez(path, **arrays)


def _check_chain(path, j, pair):
  """ConfigError unless the layers of network j chain: W (in, out), b (out,), next in = out."""
  width = None
  for i, (w, b) in enumerate(pair):
    if w.ndim != 2 or b.shape != (w.shape[-1],) or (width is not None and
                                                    w.shape[0] != width):
      raise ConfigError(f"weight zoo {path!r}: network {j} layer {i} has w {w.shape} and b "
                        f"{b.shape}; an MLP layer has w (in, out) with in the previous "
                        "out, and b (out,).")
    width = w.shape[1]


def load_zoo(path: str) -> Zoo:
  """Reads a zoo file; ConfigError (one line) for a missing or unreadable file, missing
  task indices, malformed names, or networks of different architectures."""
  arrays = read_npz(path, "weight zoo")
  if "tasks" not in arrays:
    raise ConfigError(f"weight zoo {path!r} lacks the array 'tasks' (M,) of task indices.")
  nets = {}
  for name, array in arrays.items():
    if name == "tasks":
      continue
    match = re.fullmatch(r"net(\d+)\.([wb])(\d+)", name)
    if not match:
      raise ConfigError(f"weight zoo {path!r}: array {name!r} is not 'tasks' or "
                        "'net<j>.w<i>' / 'net<j>.b<i>'.")
    j, kind, i = int(match[1]), match[2], int(match[3])
    nets.setdefault(j, {})[(i, kind)] = array
  tasks = np.asarray(arrays["tasks"]).astype(np.int32).reshape(-1)
  if sorted(nets) != list(range(len(tasks))) or not nets:
    raise ConfigError(f"weight zoo {path!r} holds networks {sorted(nets)[:5]}... and "
                      f"{len(tasks)} task indices; networks 0..M-1 with one task each "
                      "are expected.")
  params, layout = [], None
  for j in range(len(tasks)):
    tensors = nets[j]
    depth = len(tensors) // 2
    if set(tensors) != {(i, k) for i in range(depth) for k in "wb"}:
      raise ConfigError(f"weight zoo {path!r}: network {j} lacks a weight or bias "
                        f"(has {sorted(f'{k}{i}' for i, k in tensors)}).")
    pair = tuple((tensors[(i, "w")], tensors[(i, "b")]) for i in range(depth))
    _check_chain(path, j, pair)
    this = weight_layout(pair)
    if layout is None:
      layout = this
    elif this != layout:
      raise ConfigError(f"weight zoo {path!r} mixes architectures: network {j} has "
                        f"layer sizes {this.layer_sizes}, network 0 {layout.layer_sizes}; "
                        "one zoo holds one architecture.")
    params.append(pair)
  vectors = np.stack([np.asarray(flatten_weights(p)) for p in params]).astype(np.float32)
  if not np.all(np.isfinite(vectors)):
    raise ConfigError(f"weight zoo {path!r} holds non-finite weights.")
  return Zoo(vectors, tasks, layout)
