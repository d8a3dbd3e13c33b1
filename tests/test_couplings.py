"""Minibatch couplings against POT (an independent OT implementation) on random problems."""
import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest

from diffjax.couplings import (COUPLINGS, chain_couplings, exact_ot, label_ot,
                               sinkhorn_log_plan, sinkhorn_ot)
from diffjax.data import TOY_2D
from diffjax.errors import ConfigError


def _problem(seed, n=24, d=3):
  k0, k1 = jax.random.split(jax.random.PRNGKey(seed))
  return jax.random.normal(k0, (n, d)), 2 * jax.random.normal(k1, (n, d)) + 1


def _pot_cost(x0, x1):
  cost = ot.dist(np.asarray(x0, np.float64), np.asarray(x1, np.float64))
  n = len(cost)
  return ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), cost)


def _pair_cost(x0, x1):
  return float(np.mean(np.sum((np.asarray(x0, np.float64) - np.asarray(x1)) ** 2, -1)))


def _is_permutation_of(a, b):
  key = lambda x: np.lexsort(np.asarray(x).T)
  return np.allclose(np.asarray(a)[key(a)], np.asarray(b)[key(b)])


@pytest.mark.parametrize("solver", ["pot", "hungarian"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_ot_matches_pot(solver, seed):
  x0, x1 = _problem(seed)
  couple = jax.jit(lambda k, a, b: exact_ot(k, a, b, solver=solver))
  y0, y1 = couple(jax.random.PRNGKey(0), x0, x1)
  np.testing.assert_array_equal(y0, x0)
  assert _is_permutation_of(y1, x1)
  np.testing.assert_allclose(_pair_cost(y0, y1), _pot_cost(x0, x1), rtol=1e-5)
  assert _pair_cost(y0, y1) < _pair_cost(x0, x1)   # Better than the independent pairing.


def test_exact_ot_runs_inside_scan_and_vmap():
  x0, x1 = _problem(3, n=16, d=2)

  def body(carry, key):
    return carry, exact_ot(key, x0, x1)[1]
  _, outs = jax.jit(lambda k: jax.lax.scan(body, 0, jax.random.split(k, 2)))(
      jax.random.PRNGKey(0))
  np.testing.assert_allclose(_pair_cost(x0, outs[1]), _pot_cost(x0, x1), rtol=1e-5)
  batched = jax.vmap(lambda a, b: exact_ot(None, a, b)[1])(jnp.stack([x0, x1]),
                                                           jnp.stack([x1, x0]))
  np.testing.assert_allclose(_pair_cost(x1, batched[1]), _pot_cost(x1, x0), rtol=1e-5)


@pytest.mark.parametrize("seed,epsilon", [(0, 0.5), (1, 2.0)])
def test_sinkhorn_plan_matches_pot(seed, epsilon):
  x0, x1 = _problem(seed, n=20, d=2)
  plan = np.exp(np.asarray(jax.jit(
      lambda a, b: sinkhorn_log_plan(a, b, epsilon, threshold=1e-7, max_iterations=20_000)
  )(x0, x1), np.float64))
  cost = ot.dist(np.asarray(x0, np.float64), np.asarray(x1, np.float64))
  n = len(cost)
  reference = ot.sinkhorn(np.full(n, 1 / n), np.full(n, 1 / n), cost, epsilon,
                          method="sinkhorn_log", stopThr=1e-9, numItermax=10_000)
  np.testing.assert_allclose(plan, reference, atol=2e-4 / n)
  np.testing.assert_allclose(plan.sum(1), 1 / n, rtol=1e-3)


def test_sinkhorn_coupling_samples_rows_of_the_plan():
  x0, x1 = _problem(4, n=64, d=2)
  couple = jax.jit(lambda k: sinkhorn_ot(k, x0, x1, epsilon=0.01, threshold=1e-6))
  y0, y1 = couple(jax.random.PRNGKey(0))
  np.testing.assert_array_equal(y0, x0)
  # A tiny epsilon makes the plan nearly a permutation: near the exact cost, far below
  # the independent one.
  exact, independent = _pot_cost(x0, x1), _pair_cost(x0, x1)
  assert _pair_cost(y0, y1) < exact + 0.05 * (independent - exact)
  # A huge epsilon makes it nearly independent: pairs spread over all targets.
  _, wide = jax.jit(lambda k: sinkhorn_ot(k, x0, x1, epsilon=1e4))(jax.random.PRNGKey(1))
  assert len(np.unique(np.asarray(wide), axis=0)) > 30


def test_label_conditional_ot_pairs_within_classes():
  x0, x1 = _problem(5, n=30, d=2)
  labels = jnp.arange(30) % 3
  perm = jax.random.permutation(jax.random.PRNGKey(1), 30)
  x1, labels1 = x1[perm], labels[perm]
  _, y1 = jax.jit(lambda a, b: label_ot(None, a, b, labels0=labels, labels1=labels1))(x0, x1)
  # Recover which x1 row each pair uses, then check the class and the per-class optimum.
  rows = np.array([np.flatnonzero(np.all(np.asarray(x1) == np.asarray(r), 1))[0] for r in y1])
  np.testing.assert_array_equal(np.asarray(labels1)[rows], np.asarray(labels))
  total = sum(_pot_cost(x0[labels == c], x1[labels1 == c]) * 10 for c in range(3))
  np.testing.assert_allclose(_pair_cost(x0, y1) * 30, total, rtol=1e-5)
  with pytest.raises(ValueError, match="both labels0 and labels1"):
    exact_ot(None, x0, x1, labels0=labels)


def test_chained_plans_are_optimal_between_consecutive_marginals():
  xs = jnp.stack([_problem(6)[0], _problem(7)[1], 3 + _problem(8)[0]])
  chain = jax.jit(lambda k, x: chain_couplings(k, x))(jax.random.PRNGKey(0), xs)
  np.testing.assert_array_equal(chain[0], xs[0])
  for k in range(2):
    assert _is_permutation_of(chain[k + 1], xs[k + 1])
    np.testing.assert_allclose(_pair_cost(chain[k], chain[k + 1]),
                               _pot_cost(chain[k], xs[k + 1]), rtol=1e-5)


def test_registry_lists_couplings():
  assert {"independent", "exact_ot", "sinkhorn_ot", "label_ot"} <= set(COUPLINGS.names())


def test_sinkhorn_converges_at_small_epsilon_and_refuses_when_it_cannot():
  """With the default iterations the plan's column marginals are within 5e-3 of uniform
  at epsilon = 0.01 (a cold start stopped at 1.4e-2 after 2,000 iterations, silently);
  where it cannot converge (epsilon = 0.001) an eager call raises a ConfigError naming
  epsilon, and a compiled one logs a warning."""
  x0 = jax.random.normal(jax.random.PRNGKey(0), (256, 2))
  x1 = TOY_2D.get("eight_gaussians")(jax.random.PRNGKey(1), 256)
  plan = np.exp(np.asarray(sinkhorn_log_plan(x0, x1, 0.01), np.float64))
  assert np.abs(plan.sum(0) * 256 - 1).max() < 5e-3
  assert np.abs(plan.sum(1) * 256 - 1).max() < 5e-3
  with pytest.raises(ConfigError, match=r"did not converge at epsilon=0.001.*coupling"):
    sinkhorn_log_plan(x0, x1, 0.001)
  with pytest.raises(ConfigError, match="epsilon must be > 0"):
    sinkhorn_ot(jax.random.PRNGKey(2), x0, x1, epsilon=0.0)
