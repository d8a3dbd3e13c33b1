"""What a bridge method bridges, built from a config's data section: two marginals, or
snapshots, with the reference and the time grid.

The data kinds of the bridges family are the entries of `BRIDGE_DATA` (config.data.kind):

  gaussian   two Gaussians of dimension data.dim drawn from data.seed
             (`gaussian_endpoints`), with the closed-form bridge as the oracle
  toy2d      two 2D samplers, data.source -> data.target (`diffjax.data.TOY_2D`)
  snapshots  unpaired snapshots (`diffjax.data.snapshots`), simulated from
             data.system (`diffjax.bridges.systems`) or read from data.file, under the
             reference family reference.family, started at the family's neutral
             parameters (reference.start "family") or at the simulating system's true
             ones ("system": an oracle reference)

Each entry declares the problem it gives (`diffjax.bridges.methods.PROBLEM_KINDS`: a
method bridges one of them), the config keys it reads and build(config) -> problem.
"""
import dataclasses
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.bridges import multimarginal
from diffjax.bridges.evaluation import SnapshotEvaluation, TwoMarginalEvaluation
from diffjax.bridges.gaussian import GaussianBridge, gaussian_bridge
from diffjax.bridges.ipf import dsb_time_grid
from diffjax.bridges.methods import no_check
from diffjax.bridges.reference import DRIFT_FAMILIES, Reference, brownian, reference_process
from diffjax.bridges.simulate import check_direction
from diffjax.bridges.systems import SNAPSHOT_SYSTEMS, simulate_snapshots
from diffjax.data.snapshots import Snapshots, load_snapshots, split_alternate
from diffjax.data.toy2d import TOY_2D, get_sampler
from diffjax.errors import ConfigError
from diffjax.registry import Registry
from diffjax.train.validation import Key

BRIDGE_DATA = Registry("bridge data kind")
# Where a snapshot problem's reference starts: the family's neutral parameters, or the
# simulating system's true ones (an oracle for the refinement to aim at).
REFERENCE_STARTS = ("family", "system")


# ----------------------------------------------------------------------------------------
# Problems


@dataclasses.dataclass(frozen=True)
class TwoMarginalProblem:
  """Two marginals under the Brownian reference.

  Attributes:
    dim: the dimension D.
    source, target: samplers sampler(key, n) -> (n, D) of rho0 (t = 0) and rho1 (t = 1).
    reference: the Brownian reference (`diffjax.bridges.reference.brownian`).
    ts: (N + 1,) the increasing simulation grid on [0, 1].
    oracle: the closed-form bridge (`diffjax.bridges.gaussian`), or None.
    description: a short text for titles.
  """
  dim: int
  source: Callable
  target: Callable
  reference: Reference
  ts: jax.Array
  oracle: Optional[GaussianBridge]
  description: str

  @property
  def sigma(self) -> float:
    return float(self.reference.sigma)

  @property
  def num_segments(self) -> int:
    return 1

  def starts(self, key, num, direction):
    """(num, D) draws of the marginal that travel in `direction` starts from: rho0
    forward, rho1 backward."""
    sampler = self.source if check_direction(direction) == "forward" else self.target
    return sampler(key, num)

  def evaluation(self, eval_config) -> TwoMarginalEvaluation:
    """The evaluation of config.eval (num_samples, reference_seed, end_metrics,
    num_trajectories)."""
    return TwoMarginalEvaluation.build(
        self, num_samples=eval_config.num_samples, seed=eval_config.reference_seed,
        end_metrics=tuple(eval_config.end_metrics),
        num_trajectories=eval_config.num_trajectories)


@dataclasses.dataclass(frozen=True)
class SnapshotProblem:
  """Snapshots to bridge segment by segment (`diffjax.bridges.multimarginal`).

  Attributes:
    train: the training snapshots (`diffjax.data.snapshots.Snapshots`).
    held_out: the held-out snapshots, or None.
    truth: the simulating system's parameters when the reference family is the system's
      own (so a refined reference can be compared with them), else None.
    reference: the reference in bridge time (`Reference.rescaled` to the snapshots' span).
    arrays: the training snapshots in bridge time, on device.
    grids: (K, N + 1) the segments' simulation grids.
    steps_per_segment: N.
    t0, span: the map tau = t0 + span t from bridge time to the snapshots' time.
    description: a short text for titles.
  """
  train: Snapshots
  held_out: Optional[Snapshots]
  truth: Optional[dict]
  reference: Reference
  arrays: multimarginal.SnapshotArrays
  grids: jax.Array
  steps_per_segment: int
  t0: float
  span: float
  description: str

  @property
  def dim(self) -> int:
    return self.train.dim

  @property
  def num_segments(self) -> int:
    return len(self.train) - 1

  def evaluation(self, eval_config) -> SnapshotEvaluation:
    """The evaluation of config.eval (num_samples, num_trajectories)."""
    return SnapshotEvaluation(self, num_paths=max(eval_config.num_samples // 2,
                                                  eval_config.num_trajectories),
                              num_trajectories=eval_config.num_trajectories)


# ----------------------------------------------------------------------------------------
# Data constructors


def gaussian_endpoints(dim, seed, blocks=()):
  """Two Gaussians in dimension dim: (mean0, cov0, mean1, cov1), float32, from seed. With
  `blocks` (sizes summing to dim) both covariances are block-diagonal: independent blocks,
  whose bridges are independent too (the Brownian reference factorises)."""
  rng = np.random.default_rng(seed)
  blocks = tuple(blocks) or (dim,)
  if not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in blocks):
    raise ConfigError(f"data.blocks={blocks} must be positive integers summing to "
                      f"data.dim={dim}.")
  if sum(blocks) != dim:
    raise ConfigError(f"data.blocks={blocks} must sum to data.dim={dim}.")
  out = []
  for scale in (1.0, 2.0):
    cov = np.zeros((dim, dim))
    start = 0
    for size in blocks:
      m = rng.normal(size=(size, size))
      cov[start:start + size, start:start + size] = scale * (m @ m.T / size
                                                             + 0.3 * np.eye(size))
      start += size
    out += [rng.normal(size=dim).astype(np.float32), cov.astype(np.float32)]
  return tuple(out)


def gaussian_sampler(mean, cov) -> Callable:
  """sampler(key, n) -> (n, D) draws of N(mean (D,), cov (D, D)) by its Cholesky factor."""
  root = np.linalg.cholesky(np.asarray(cov, np.float64)).astype(np.float32)
  mean, root = jnp.asarray(mean), jnp.asarray(root)
  return lambda key, n: mean[None] + jax.random.normal(key, (n, mean.shape[0])) @ root.T


def gaussian_oracle(dim, seed, blocks, sigma) -> GaussianBridge:
  """The closed-form bridge between `gaussian_endpoints(dim, seed, blocks)` under the
  Brownian reference of this sigma."""
  a, cov_a, b, cov_b = gaussian_endpoints(dim, seed, blocks)
  return gaussian_bridge(a, cov_a, b, cov_b, brownian(sigma))


def two_marginal_grid(bridge_config) -> jax.Array:
  """The simulation grid of config.bridge: DSB's (num_steps, gamma_min, gamma_max)."""
  c = bridge_config
  return dsb_time_grid(c.num_steps, c.gamma_min, c.gamma_max)


def load_study_snapshots(config):
  """The configured snapshots: (all, training, held-out or None, true params or None)."""
  d = config.data
  if d.file:
    snaps = load_snapshots(d.file)
    truth = None
  else:
    system = SNAPSHOT_SYSTEMS.get(d.system)
    times = np.arange(d.times_start, d.times_stop + 1e-9, d.times_step)
    snaps = simulate_snapshots(jax.random.PRNGKey(d.seed), system, times, d.num_points)
    truth = system.params if system.family == config.reference.family else None
  if d.hold_out:
    train, held = split_alternate(snaps)
  else:
    train, held = snaps, None
  return snaps, train, held, truth


# ----------------------------------------------------------------------------------------
# Data kinds


@dataclasses.dataclass(frozen=True)
class BridgeData:
  """A data kind: the problem it gives (a `PROBLEM_KINDS` entry), the config keys it
  reads, build(config) -> problem, and check(config) for rules its keys cannot express."""
  name: str
  problem: str
  keys: Tuple[Key, ...]
  build: Callable[[Any], Any]
  check: Callable[[Any], None] = no_check


def register_data(kind: BridgeData) -> BridgeData:
  BRIDGE_DATA.register(kind.name, kind)
  return kind


GRID_KEYS = (Key("bridge.gamma_min", "float", 0.0, open_low=True),
             Key("bridge.gamma_max", "float", 0.0, open_low=True))


def _gaussian(config) -> TwoMarginalProblem:
  d, sigma = config.data, config.bridge.sigma
  oracle = gaussian_oracle(d.dim, d.seed, d.blocks, sigma)
  return TwoMarginalProblem(
      d.dim, gaussian_sampler(oracle.mean0, oracle.cov0),
      gaussian_sampler(oracle.mean1, oracle.cov1), brownian(sigma),
      two_marginal_grid(config.bridge), oracle,
      f"N(a, A) -> N(b, B) in {d.dim}D, sigma {sigma:g}")


def _toy2d(config) -> TwoMarginalProblem:
  d, sigma = config.data, config.bridge.sigma
  return TwoMarginalProblem(2, get_sampler(d.source), get_sampler(d.target),
                            brownian(sigma), two_marginal_grid(config.bridge), None,
                            f"{d.source} -> {d.target}, sigma {sigma:g}")


def _check_toy2d(config):
  if config.data.dim != 2:
    raise ConfigError(f"data.dim={config.data.dim!r} does not apply to data.kind='toy2d' "
                      "(2D samplers); set data.dim=2 or use data.kind='gaussian'.")


def _snapshots(config) -> SnapshotProblem:
  d, c = config.data, config.bridge
  _, train, held, truth = load_study_snapshots(config)
  t0, span = float(train.times[0]), float(train.times[-1] - train.times[0])
  from_system = config.reference.start == "system"
  params = truth if from_system else None
  reference = reference_process(DRIFT_FAMILIES.get(config.reference.family), c.sigma,
                                params, train.dim).rescaled(t0, span)
  arrays = multimarginal.snapshot_arrays(train, t0, span)
  source = d.file or d.system
  start = "the true" if from_system else "a"
  return SnapshotProblem(train, held, truth, reference, arrays,
                         multimarginal.segment_grids(arrays.times, c.num_steps),
                         c.num_steps, t0, span,
                         f"{source}, {start} {config.reference.family} reference")


def _check_snapshots(config):
  d = config.data
  if not isinstance(d.file, str):
    raise ConfigError(f"data.file={d.file!r} must be the path of an .npz file, or '' to "
                      "simulate data.system.")
  for name in ("times_start", "times_stop"):
    value = d[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(
        value):
      raise ConfigError(f"data.{name}={value!r} must be a finite number (a snapshot time).")
  family, start = config.reference.family, config.reference.start
  if start == "system" and (d.file or SNAPSHOT_SYSTEMS.get(d.system).family != family):
    raise ConfigError(f"reference.start='system' starts the reference at the simulating "
                      "system's parameters: it needs simulated snapshots (data.file='') "
                      f"of a system of family reference.family={family!r}.")


register_data(BridgeData(
    "gaussian", "two_marginal", GRID_KEYS + (
        Key("data.dim", "int", 1, meaning="dimension of the Gaussians"),
        Key("data.seed", "int", 0, 2 ** 31 - 1)),
    _gaussian))
register_data(BridgeData(
    "toy2d", "two_marginal", GRID_KEYS + (
        Key("data.source", "name", names=TOY_2D.names),
        Key("data.target", "name", names=TOY_2D.names)),
    _toy2d, _check_toy2d))
register_data(BridgeData(
    "snapshots", "snapshots", (
        Key("data.system", "name", names=SNAPSHOT_SYSTEMS.names),
        Key("data.seed", "int", 0, 2 ** 31 - 1),
        Key("data.num_points", "int", 1, meaning="points per simulated snapshot"),
        Key("data.times_step", "float", 0.0, open_low=True),
        Key("data.hold_out", "bool"),
        Key("reference.family", "name", names=DRIFT_FAMILIES.names),
        Key("reference.start", "name", names=lambda: REFERENCE_STARTS)),
    _snapshots, _check_snapshots))
