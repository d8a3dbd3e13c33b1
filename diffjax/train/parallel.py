"""Data parallelism with a device mesh and named shardings (no pmap), and multi-host start-up.

One mesh axis, "data", spans every device of every process: batches are split along it and
parameters are replicated. The same code runs on one CPU, several GPUs or a TPU pod.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


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


def make_data_mesh(devices=None) -> Mesh:
  """A 1D mesh over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Splits the leading (batch) axis over the data axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def batch_sharding_constraint(mesh: Mesh):
  """Returns shard(x): constrains a batch-first array, inside jit, to be split over devices."""
  sharding = batch_sharded(mesh)
  return lambda x: jax.lax.with_sharding_constraint(x, sharding)


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
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)
