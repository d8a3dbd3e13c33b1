"""Data parallelism with a device mesh and named shardings (no pmap), and multi-host start-up.

The mesh has two axes, ("data", "model"), over every device of every process. Batches are
split over both, so every device computes on its own examples. Parameters, optimizer state
and EMA are replicated when the "model" axis has size 1 (the default), and otherwise
stored sharded along it, fully-sharded data parallel style: each array is split on its
largest dimension that the axis size divides (see `param_partition_spec`) and XLA gathers
it for the computation and reduce-scatters its gradient ("ZeRO: Memory Optimizations
Toward Training Trillion Parameter Models", Rajbhandari et al., 2020, stage 3). This
divides parameter and optimizer memory by the axis size for large models. The same code
runs on one CPU, several GPUs or a TPU pod.
"""
import functools

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
MODEL_AXIS = "model"
BATCH_AXES = (DATA_AXIS, MODEL_AXIS)
# Arrays with fewer elements stay replicated: splitting them saves nothing worth a gather.
MIN_SHARDED_SIZE = 1024


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None):
  """Starts multi-host JAX. With no arguments the cluster is auto-detected (TPU pods,
  SLURM, ...); give all three to start processes by hand (e.g. on one machine)."""
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if any(given) and not all(given):
    raise ValueError("Give all of coordinator_address, num_processes and process_id, or "
                     "none of them for auto-detection.")
  if all(given):
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  else:
    jax.distributed.initialize()


def make_data_mesh(devices=None, model_axis_size=1) -> Mesh:
  """A (data, model) mesh over `devices` (default: all devices of all processes), with
  `model_axis_size` devices along the parameter-sharding axis."""
  devices = jax.devices() if devices is None else list(devices)
  if (not isinstance(model_axis_size, int) or model_axis_size < 1
      or len(devices) % model_axis_size):
    valid = [k for k in range(1, len(devices) + 1) if len(devices) % k == 0]
    raise ValueError(f"train.model_axis_size={model_axis_size!r} must divide the number of "
                     f"devices ({len(devices)}); valid: {valid}.")
  grid = np.asarray(devices).reshape(len(devices) // model_axis_size, model_axis_size)
  return Mesh(grid, (DATA_AXIS, MODEL_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Splits the leading (batch) axis over every device of the mesh."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def param_partition_spec(shape, model_axis_size) -> PartitionSpec:
  """Where an array of `shape` lives: split along MODEL_AXIS on its largest dimension
  divisible by `model_axis_size` (the last such on ties), or replicated when the axis has
  size 1, the array has fewer than MIN_SHARDED_SIZE elements or no dimension divides."""
  if model_axis_size == 1 or int(np.prod(shape, dtype=np.int64)) < MIN_SHARDED_SIZE:
    return PartitionSpec()
  candidates = [(size, i) for i, size in enumerate(shape) if size % model_axis_size == 0]
  if not candidates:
    return PartitionSpec()
  _, axis = max(candidates)
  return PartitionSpec(*([None] * axis + [MODEL_AXIS]))


def state_shardings(mesh: Mesh, abstract_state):
  """NamedShardings for a pytree of arrays or ShapeDtypeStructs (`param_partition_spec`)."""
  size = mesh.shape[MODEL_AXIS]
  return jax.tree.map(
      lambda x: NamedSharding(mesh, param_partition_spec(x.shape, size)), abstract_state)


def batch_sharding_constraint(mesh: Mesh):
  """Returns shard(x): constrains a batch-first array, inside jit, to be split over devices."""
  sharding = batch_sharded(mesh)
  return lambda x: jax.lax.with_sharding_constraint(x, sharding)


def gather_replicated(tree, mesh: Mesh):
  """The same arrays replicated on every device (an all-gather of sharded parameters, for
  evaluation and sampling code that expects whole arrays)."""
  if mesh.shape[MODEL_AXIS] == 1:
    return tree
  return _replicator(mesh)(tree)


@functools.lru_cache(maxsize=None)
def _replicator(mesh: Mesh):
  """One jitted identity per mesh whose output is replicated (compiled once per tree)."""
  return jax.jit(lambda tree: tree, out_shardings=replicated(mesh))


def check_batch_size(batch_size: int, mesh: Mesh):
  n = mesh.devices.size
  if batch_size % n:
    raise ValueError(f"train.batch_size={batch_size} must be divisible by the number of "
                     f"devices ({n}); e.g. use {max(n, batch_size // n * n)}.")


def to_host(x) -> np.ndarray:
  """A replicated (or single-process) array as a NumPy array on this host."""
  if x.is_fully_addressable:
    return np.asarray(x)
  return np.asarray(x.addressable_data(0))


def barrier(name: str):
  """Waits for every process (no-op with one process), e.g. after process 0 edits files."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
