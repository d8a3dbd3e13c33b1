"""Sample-quality metrics between generated samples and held-out target samples."""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.registry import Registry

METRICS = Registry("metric")


def _check_pair(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f"Expected (N, D) and (M, D) samples; got {x.shape} and {y.shape}.")
  if not len(x) or not len(y):
    raise ValueError(f"Expected non-empty samples; got {x.shape} and {y.shape}.")
  return x, y


def _finite(x, y) -> bool:
  """Metrics of non-finite samples (a diverging model) are NaN, never a number: POT's
  solver, for one, returns 0.0 (a perfect score) for NaN costs."""
  return bool(np.all(np.isfinite(x)) and np.all(np.isfinite(y)))


@METRICS.register("w2")
def wasserstein2(x, y):
  """Exact 2-Wasserstein distance between two empirical measures (uniform weights).

  x: (N, D), y: (M, D). Solves the discrete OT problem with squared Euclidean cost exactly
  (an assignment when N = M, else POT's network simplex) and returns the square root of
  its optimal cost; NaN if a sample is not finite.
  """
  x, y = _check_pair(x, y)
  if not _finite(x, y):
    return float("nan")
  if len(x) == len(y):
    # Equal sizes: an optimal plan is a permutation (Birkhoff), found by the assignment
    # solver in milliseconds, without importing POT (and torch: seconds). Imported here:
    # scipy.optimize adds about half a second to `import diffjax`.
    import scipy.optimize  # pylint: disable=g-import-not-at-top
    cost = np.sum((x[:, None] - y[None]) ** 2, -1)
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return float(np.sqrt(np.mean(cost[rows, cols])))
  # Imported here, not at the top: POT imports torch (seconds) when installed.
  import ot  # pylint: disable=g-import-not-at-top
  cost = ot.dist(x, y, metric="sqeuclidean")
  a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
  return float(np.sqrt(ot.emd2(a, b, cost, numItermax=10_000_000)))


@jax.jit
def _energy_distance(x, y):
  def mean_dist(u, v):
    sq = jnp.sum(u ** 2, 1)[:, None] + jnp.sum(v ** 2, 1)[None] - 2 * u @ v.T
    return jnp.mean(jnp.sqrt(jnp.maximum(sq, 1e-12)))
  return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


@METRICS.register("energy_distance")
def energy_distance(x, y):
  """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Székely & Rizzo), V-statistic.

  x: (N, D), y: (M, D). Zero iff the empirical distributions coincide.
  """
  x, y = _check_pair(x, y)
  if not _finite(x, y):
    return float("nan")
  return float(_energy_distance(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)))


def compute_metrics(names, samples, reference):
  """Returns {name: value} for each metric name on (samples, reference)."""
  return {name: METRICS.get(name)(samples, reference) for name in names}


def w2_floor(sample_target, reference, num_draws=5, seed=0):
  """The W2 sampling floor: (mean, std) of W2 between `reference` (N, D) and `num_draws`
  fresh draws of N target samples, the distance a perfect model would score on average.

  A single draw is itself random (a perfect sampler lands above or below it about half the
  time); the mean over several draws, with its spread, says how far below the floor a run
  may land by chance.

  Args:
    sample_target: sample_target(key, n) -> (n, D) samples of the target distribution.
    reference: (N, D) held-out target samples the run is scored against.
    num_draws: independent draws (>= 2 for a spread).
    seed: draw i uses jax.random.fold_in(PRNGKey(seed), i); use a seed no other draw uses.
  """
  reference = np.asarray(reference)
  values = [wasserstein2(np.asarray(sample_target(
      jax.random.fold_in(jax.random.PRNGKey(seed), i), len(reference))), reference)
            for i in range(num_draws)]
  return float(np.mean(values)), float(np.std(values, ddof=1 if num_draws > 1 else 0))
