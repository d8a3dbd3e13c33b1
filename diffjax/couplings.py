"""Couplings: how (source, data) pairs are drawn for a training batch.

A coupling is `couple(key, x0, x1, **options) -> (x0, x1)` on (B, ...) arrays, registered
by name and called inside the jit-compiled training step; a config's `coupling` section
gives its options. x0 keeps its order, x1 is reordered (so per-example conditions aligned
with x0 stay valid). Costs are squared Euclidean on flattened examples.

Minibatch OT couplings follow "Improving and generalizing flow-based generative models with
minibatch optimal transport" (Tong et al., sec. 3.2, eq. 17): OT-CFM pairs by the exact
plan, SB-CFM by the entropic plan with regularisation 2 sigma^2.

Exact OT inside jit. For two uniform batches of equal size the exact plan is a permutation
(an optimal vertex of the Birkhoff polytope), so it is a linear assignment problem. Two
exact solvers are offered: `solver="pot"` (default) runs POT's network simplex (`ot.emd`,
float64) on the host through `jax.pure_callback`: about 10 ms for B = 256, the same solver
TorchCFM uses, but a host round trip each step. `solver="hungarian"` runs optax's
Hungarian algorithm on device (`optax.assignment.hungarian_algorithm`, pure JAX, O(B^3)):
no host round trip, for accelerators, but about 10x slower than POT on a CPU at B = 256.
The entropic plan is computed on device by ott-jax's Sinkhorn.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from optax import assignment
from absl import logging

from diffjax.errors import ConfigError
from diffjax.registry import Registry

COUPLINGS = Registry("coupling")


@COUPLINGS.register("independent")
def independent(key, x0, x1):
  """The product coupling rho0 x rho1: pairs are used as drawn."""
  del key
  return x0, x1


def _flat(x):
  return x.reshape(x.shape[0], -1)


def squared_distances(x0, x1):
  """(B, ...), (M, ...) -> (B, M) squared Euclidean distances."""
  u, v = _flat(x0), _flat(x1)
  sq = jnp.sum(u ** 2, 1)[:, None] + jnp.sum(v ** 2, 1)[None] - 2 * u @ v.T
  return jnp.maximum(sq, 0.0)


def _host_assignment(x0, x1, labels0, labels1):
  """NumPy: exact OT permutation (B,) int32 by POT, with an optional label penalty."""
  # Imported here, not at the top: POT imports torch (seconds) when installed.
  import ot  # pylint: disable=g-import-not-at-top
  u = np.asarray(x0, np.float64).reshape(x0.shape[0], -1)
  v = np.asarray(x1, np.float64).reshape(x1.shape[0], -1)
  cost = ot.dist(u, v, metric="sqeuclidean")
  if labels0 is not None:
    # A cross-class pair costs more than any whole within-class assignment, so the plan
    # uses the fewest possible cross-class pairs (none when the class counts agree).
    penalty = cost.max() * len(cost) + 1.0
    cost = cost + penalty * (np.asarray(labels0)[:, None] != np.asarray(labels1)[None])
  n = len(cost)
  plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), cost, numItermax=10_000_000)
  return np.argmax(plan, axis=1).astype(np.int32)


def exact_assignment(x0, x1, solver="pot", labels0=None, labels1=None):
  """The exact minibatch OT plan as a permutation: (B,) int32 perm with x0[i] -> x1[perm[i]].

  x0, x1: (B, ...) with equal B. labels0, labels1: optional (B,) int class labels; then
  pairs stay within a class whenever the class counts allow it (POT solver only).
  """
  if x0.shape[0] != x1.shape[0]:
    raise ValueError(f"Exact minibatch OT needs equal batch sizes; got {x0.shape[0]} and "
                     f"{x1.shape[0]}.")
  if (labels0 is None) != (labels1 is None):
    raise ValueError("Give both labels0 and labels1, or neither.")
  if solver not in EXACT_SOLVERS:
    raise ValueError(f"Unknown exact OT solver {solver!r}; valid: {EXACT_SOLVERS.names()}.")
  return EXACT_SOLVERS.get(solver)(x0, x1, labels0, labels1)


def _pot_assignment(x0, x1, labels0, labels1):
  """POT's network simplex on the host (float64; label penalties allowed)."""
  out = jax.ShapeDtypeStruct((x0.shape[0],), jnp.int32)
  if labels0 is None:
    fn = lambda u, v: _host_assignment(u, v, None, None)
    return jax.pure_callback(fn, out, x0, x1, vmap_method="sequential")
  return jax.pure_callback(_host_assignment, out, x0, x1, labels0, labels1,
                           vmap_method="sequential")


def _hungarian_assignment(x0, x1, labels0, labels1):
  """optax's Hungarian algorithm on the device (no label penalties)."""
  del labels1
  if labels0 is not None:
    raise ValueError("Label-conditional OT uses solver='pot' (float64 penalties).")
  rows, cols = assignment.hungarian_algorithm(squared_distances(x0, x1))
  return jnp.zeros(x0.shape[0], jnp.int32).at[rows].set(cols.astype(jnp.int32))


# name -> assign(x0, x1, labels0, labels1) -> (B,) int32 permutation.
EXACT_SOLVERS = Registry("exact OT solver")
EXACT_SOLVERS.register("pot", _pot_assignment)
EXACT_SOLVERS.register("hungarian", _hungarian_assignment)


@COUPLINGS.register("exact_ot")
def exact_ot(key, x0, x1, *, solver="pot", labels0=None, labels1=None):
  """OT-CFM's coupling: x1 reordered by the exact squared-Euclidean minibatch OT plan.

  With labels0/labels1 ((B,) ints) it is label-conditional (see `exact_assignment`).
  """
  del key
  perm = exact_assignment(x0, x1, solver, labels0, labels1)
  return x0, x1[perm]


@COUPLINGS.register("label_ot")
def label_ot(key, x0, x1, *, labels0, labels1, solver="pot"):
  """Label-conditional exact OT: pairs only within a class (class counts must agree for
  all pairs to be within class; otherwise the fewest cross-class pairs)."""
  return exact_ot(key, x0, x1, solver=solver, labels0=labels0, labels1=labels1)


# Sinkhorn starts at ANNEAL_INIT times the target epsilon and decays it geometrically by
# ANNEAL_DECAY per iteration (reaching the target after about 66 iterations): at small
# epsilon this converges in a fraction of the iterations of a cold start (epsilon = 0.01,
# 8 Gaussians, B = 256: 2,700 iterations against 5,000).
ANNEAL_INIT, ANNEAL_DECAY = 1000.0, 0.9
_warned = set()


def sinkhorn_solve(x0, x1, epsilon, threshold=1e-3, max_iterations=10_000):
  """(log of the entropic OT plan (B, M), converged (bool), marginal error) between
  uniform batches: min <P, C> - epsilon H(P) with C the squared distances (ott-jax
  Sinkhorn in log space, with epsilon annealing), P = exp((f_i + g_j - C_ij) / epsilon).
  `converged` is ott-jax's flag: the marginal error fell below `threshold` within
  `max_iterations`."""
  # Imported here, not at the top: ott-jax (with the scikit-learn it loads) takes about 1 s.
  from ott.geometry import epsilon_scheduler, pointcloud  # pylint: disable=g-import-not-at-top
  from ott.problems.linear import linear_problem  # pylint: disable=g-import-not-at-top
  from ott.solvers.linear import sinkhorn  # pylint: disable=g-import-not-at-top
  # ott-jax broadcasts implicitly inside; allow it there even under strict promotion.
  with jax.numpy_rank_promotion("allow"):
    schedule = epsilon_scheduler.Epsilon(epsilon, init=ANNEAL_INIT, decay=ANNEAL_DECAY)
    geom = pointcloud.PointCloud(_flat(x0), _flat(x1), epsilon=schedule)
    out = sinkhorn.Sinkhorn(threshold=threshold, max_iterations=max_iterations)(
        linear_problem.LinearProblem(geom))
    cost = geom.cost_matrix
    # Errors are recorded every few iterations, -1 where none was computed: the last one.
    error = out.errors[jnp.maximum(jnp.sum(out.errors >= 0) - 1, 0)]
    return (out.f[:, None] + out.g[None] - cost) / epsilon, out.converged, error


def _unconverged_message(epsilon, threshold, max_iterations, error):
  return (f"sinkhorn_ot did not converge at epsilon={float(epsilon):g} within max_iterations="
          f"{max_iterations} (marginal error {float(error):.3g} > threshold {threshold}): "
          "its plan would be biased. Raise coupling.epsilon (the entropic OT of SB-CFM is "
          "2 sigma^2) or coupling.max_iterations.")


def _warn_unconverged(converged, error, epsilon, *, threshold, max_iterations):
  epsilon = float(epsilon)
  if not bool(converged) and epsilon not in _warned:
    _warned.add(epsilon)
    logging.warning("%s (Reported once per epsilon.)",
                    _unconverged_message(epsilon, threshold, max_iterations, error))


def sinkhorn_log_plan(x0, x1, epsilon, threshold=1e-3, max_iterations=10_000):
  """Log of the entropic OT plan between uniform batches: (B, M) (see `sinkhorn_solve`).

  An unconverged plan is refused: called eagerly this raises `ConfigError`; inside `jit`
  (a training step) a warning is logged once per epsilon (`check_sinkhorn` is the eager
  check a pipeline runs on a real batch before training).
  """
  log_plan, converged, error = sinkhorn_solve(x0, x1, epsilon, threshold, max_iterations)
  try:
    ok = bool(converged)
  except jax.errors.TracerBoolConversionError:
    jax.debug.callback(functools.partial(_warn_unconverged, threshold=threshold,
                                         max_iterations=max_iterations),
                       converged, error, epsilon)
    return log_plan
  if not ok:
    raise ConfigError(_unconverged_message(epsilon, threshold, max_iterations, error))
  return log_plan


@COUPLINGS.register("sinkhorn_ot")
def sinkhorn_ot(key, x0, x1, *, epsilon=0.05, threshold=1e-3, max_iterations=10_000):
  """SB-CFM's coupling: for each x0[i], x1[j] is drawn from the row i of the entropic plan
  (so x0's marginal is kept exactly). SB-CFM uses epsilon = 2 sigma^2. An unconverged
  plan is refused (`sinkhorn_log_plan`)."""
  if not epsilon > 0:
    raise ConfigError(f"coupling.epsilon must be > 0; got {epsilon}.")
  log_plan = sinkhorn_log_plan(x0, x1, epsilon, threshold, max_iterations)
  cols = jax.random.categorical(key, log_plan, axis=1)
  return x0, x1[cols]


def chain_couplings(key, xs, coupling="exact_ot", **options):
  """Chains pairwise couplings across K marginals (for multi-marginal bridges).

  xs: (K, B, ...) batches of K marginals. Returns (K, B, ...) where xs[0] keeps its order
  and each xs[k + 1] is reordered by `coupling` against the already reordered xs[k], so
  row i is one trajectory x_0 -> x_1 -> ... of the composed plans.
  """
  couple = COUPLINGS.get(coupling)
  chain = [xs[0]]
  for k in range(1, xs.shape[0]):
    _, nxt = couple(jax.random.fold_in(key, k), chain[-1], xs[k], **options)
    chain.append(nxt)
  return jnp.stack(chain)
