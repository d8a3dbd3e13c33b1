"""A prefetching host input stage of minibatch-OT coupled pairs.

OT-CFM, SB-CFM and IMF's first coupling pair each training batch by an optimal-transport
plan ("Improving and generalizing flow-based generative models with minibatch optimal
transport", Tong et al., sec. 3.2). Solved inside the compiled step (`diffjax.couplings`
through `jax.pure_callback`) the host solve and the device step run one after the other.
`coupled_batches` instead makes the solve a host input stage: a background thread draws
and couples the batches of the next steps (POT's exact network simplex) while the device
trains on the current ones, and the training step receives the pairs ready-made as the
task's `data` (`diffjax.train.Task`). Batch s depends only on (seed, s), so a resumed run
sees the same pairs.
"""
import queue
import threading

import jax
import numpy as np

from diffjax.couplings import _host_assignment
from diffjax.errors import ConfigError

HOST_COUPLINGS = ("exact_ot", "independent")


def couple_on_host(x0, x1, coupling):
  """NumPy (B, D) pairs: x1 reordered by the exact OT plan, or as drawn."""
  if coupling == "independent":
    return x0, x1
  perm = _host_assignment(x0, x1, None, None)
  return x0, x1[perm]


def coupled_batches(sample_x0, sample_x1, batch_size, start_step, *, seed=0,
                    coupling="exact_ot", prefetch=4, active=None):
  """Iterator of {"x0", "x1"} NumPy batches (this host's rows) for steps start_step,
  start_step + 1, ...

  Args:
    sample_x0, sample_x1: JAX samplers sample(key, n) -> (n, D).
    batch_size: the global batch size (each host yields batch_size / process_count rows).
    start_step: the first step's index.
    seed: batches depend on fold_in(PRNGKey(seed), step) only.
    coupling: "exact_ot" (POT on the host) or "independent".
    prefetch: batches computed ahead by the background thread.
    active: optional active(step) -> bool; steps where it is False get uncoupled pairs
      (e.g. the phases of a run that do not read the batch), skipping the solve.
  """
  if coupling not in HOST_COUPLINGS:
    raise ConfigError(f"Unknown host coupling {coupling!r}; valid: {HOST_COUPLINGS}.")
  count, index = jax.process_count(), jax.process_index()
  if batch_size % count:
    raise ConfigError(f"batch_size={batch_size} must be divisible by the {count} "
                      "processes.")
  rows = slice(index * (batch_size // count), (index + 1) * (batch_size // count))
  draw = jax.jit(lambda key: (sample_x0(jax.random.fold_in(key, 0), batch_size),
                              sample_x1(jax.random.fold_in(key, 1), batch_size)))
  root = jax.random.PRNGKey(seed)

  def make(step):
    x0, x1 = (np.asarray(a) for a in draw(jax.random.fold_in(root, step)))
    if active is None or active(step):
      x0, x1 = couple_on_host(x0, x1, coupling)
    return {"x0": x0[rows], "x1": x1[rows]}

  return _Prefetched(make, start_step, prefetch)


class _Prefetched:
  """An iterator over make(step), step = start, start + 1, ..., computed by a daemon
  thread up to `depth` items ahead. Closing it (or dropping it) stops the thread."""

  def __init__(self, make, start, depth):
    self._queue = queue.Queue(maxsize=max(1, depth))
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._produce, args=(make, start), daemon=True)
    self._thread.start()

  def _produce(self, make, step):
    while not self._stop.is_set():
      try:
        item = make(step)
      except BaseException as error:  # Handed to the consumer, which re-raises it.
        item = error
      while not self._stop.is_set():
        try:
          self._queue.put(item, timeout=0.1)
          break
        except queue.Full:
          continue
      if isinstance(item, BaseException):
        return
      step += 1

  def __iter__(self):
    return self

  def __next__(self):
    item = self._queue.get()
    if isinstance(item, BaseException):
      raise item
    return item

  def close(self):
    self._stop.set()

  def __del__(self):
    self.close()
