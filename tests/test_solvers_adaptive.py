"""Adaptive Dormand–Prince 5(4): agreement with diffrax's Dopri5 at the same tolerance,
tolerance control, NFE accounting, backward integration, vmap, and the sampler."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import GaussianMixture, isotropic_mixture, mixture_oracle
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import adaptive, dopri5, sample
from diffjax.solvers.diffrax_adapter import diffrax_solve
from tests.test_solvers_ode import assert_matches_mixture

SMOOTH = GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-1.0, 0.0], [1.0, 0.5]]),
                         jnp.array([[[1.0, 0.3], [0.3, 0.8]], [[0.7, 0.0], [0.0, 1.2]]]))
PATH = build_path("vp")
FIELDS = mixture_oracle(PATH, SMOOTH).fields()
X0 = mixture_oracle(PATH, SMOOTH).marginal(0.0).sample(jax.random.PRNGKey(0), 32)


@jax.jit
def _ours(x0, tol):
  return dopri5(FIELDS.velocity, x0, 0.0, 1.0, rtol=tol, atol=tol)


def _reference():
  return jax.jit(lambda x: sample("rk4", FIELDS, PATH, x, None, num_steps=1024).x)(X0)


def test_agrees_with_diffrax_dopri5_at_the_same_tolerance():
  tol = 1e-5
  x_ours, stats = _ours(X0, tol)
  sol = jax.jit(lambda x: diffrax_solve(FIELDS.velocity, x, solver="Dopri5", rtol=tol,
                                        atol=tol))(X0)
  x_diffrax = sol.ys[-1]
  reference = _reference()
  # Both are within a few hundred tolerances of the exact flow (global error accumulates
  # local errors of size tol) and within the same distance of each other.
  assert float(jnp.max(jnp.abs(x_ours - reference))) < 300 * tol
  assert float(jnp.max(jnp.abs(x_diffrax - reference))) < 300 * tol
  assert float(jnp.max(jnp.abs(x_ours - x_diffrax))) < 300 * tol
  # Step counts match closely (same tableau, error estimate and step clipping).
  ours_steps = int(stats.accepted) + int(stats.rejected)
  diffrax_steps = int(sol.stats["num_steps"])
  assert abs(ours_steps - diffrax_steps) <= max(2, 0.25 * diffrax_steps)
  assert int(stats.nfe) == 6 * ours_steps + 2


def test_step_count_matches_diffrax_on_a_network_field():
  """A randomly initialised network field has a noisy error estimate. Dormand & Prince's
  own embedded error (1.5x Shampine's) with steps that also shrink after accepted ones cost
  50 steps against diffrax's 31 here; the default estimate and clipping match diffrax."""
  path = build_path("vp")
  model = build_model("mlp", (2,), width=128, depth=3)
  velocity = build_objective("score_matching", path, prediction="velocity").fields(
      model.apply, model.init(jax.random.PRNGKey(0))).velocity
  x0 = jax.random.normal(jax.random.PRNGKey(1), (1000, 2))
  tol = 1e-4
  _, stats = jax.jit(lambda x: dopri5(velocity, x, 0.0, 1.0, rtol=tol, atol=tol))(x0)
  sol = jax.jit(lambda x: diffrax_solve(velocity, x, solver="Dopri5", rtol=tol,
                                        atol=tol))(x0)
  ours_steps = int(stats.accepted) + int(stats.rejected)
  diffrax_steps = int(sol.stats["num_steps"])
  assert ours_steps <= 1.25 * diffrax_steps + 2, (ours_steps, diffrax_steps)


@pytest.mark.parametrize("embedded", sorted(adaptive.EMBEDDED_ERROR_SCALES))
def test_embedded_solutions_are_fourth_order(embedded):
  """b* = b - scale E satisfies the eight 4th-order conditions (Hairer I, Table II.2.2) and
  misses the 5th-order condition sum b* c^4 = 1/5, so b - b* estimates the local error."""
  c = np.array(adaptive._C)
  a = np.zeros((7, 7))
  for i, row in enumerate(adaptive._A):
    a[i, :len(row)] = row
  b = a[6]
  b_star = b - adaptive.EMBEDDED_ERROR_SCALES[embedded] * np.array(adaptive._E)
  conditions = [(b_star.sum(), 1), (b_star @ c, 1 / 2), (b_star @ c ** 2, 1 / 3),
                (b_star @ a @ c, 1 / 6), (b_star @ c ** 3, 1 / 4),
                (b_star @ (c * (a @ c)), 1 / 8), (b_star @ a @ c ** 2, 1 / 12),
                (b_star @ a @ a @ c, 1 / 24)]
  for value, expected in conditions:
    assert value == pytest.approx(expected, abs=1e-12)
  assert abs(b_star @ c ** 4 - 1 / 5) > 1e-5
  assert b @ c ** 4 == pytest.approx(1 / 5, abs=1e-12)


def test_tolerance_controls_error_and_cost():
  reference = _reference()
  loose, loose_stats = _ours(X0, 1e-3)
  tight, tight_stats = _ours(X0, 1e-6)
  err = lambda x: float(jnp.max(jnp.abs(x - reference)))
  assert err(tight) < 0.1 * err(loose)
  assert int(tight_stats.nfe) > int(loose_stats.nfe)


def test_backward_integration_and_vmap():
  x1, _ = _ours(X0, 1e-6)
  back, _ = jax.jit(lambda x: dopri5(FIELDS.velocity, x, 1.0, 0.0, rtol=1e-6, atol=1e-6))(x1)
  np.testing.assert_allclose(back, X0, atol=5e-3)
  single = jax.jit(jax.vmap(lambda x: dopri5(FIELDS.velocity, x[None], 0.0, 1.0, rtol=1e-6,
                                             atol=1e-6)[0][0]))(X0[:4])
  np.testing.assert_allclose(single, x1[:4], atol=2e-3)


def test_sampler_reaches_target_and_reports_nfe():
  bimodal = isotropic_mixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], 0.5)
  fields = mixture_oracle(PATH, bimodal).fields()
  x0 = mixture_oracle(PATH, bimodal).marginal(0.0).sample(jax.random.PRNGKey(1), 2000)
  result = jax.jit(lambda x: sample("dopri5", fields, PATH, x, None, num_steps=4,
                                    return_trajectory=True, rtol=1e-4, atol=1e-4))(x0)
  assert result.trajectory.shape == (5, 2000, 2)
  assert int(result.nfe) > 4 * 8
  assert_matches_mixture(result.x, mixture_oracle(PATH, bimodal).marginal(1.0))
  via_diffrax = jax.jit(lambda x: sample("diffrax", fields, PATH, x, None, num_steps=4,
                                         solver="Tsit5", rtol=1e-4, atol=1e-4).x)(x0)
  assert float(jnp.max(jnp.abs(via_diffrax - result.x))) < 0.05


def test_stages_run_in_a_loop_with_one_compiled_field():
  """Every field evaluation of a solve (the start, the initial-step probe and the stages
  of every attempt) shares one traced field."""
  traces = []
  def field(x, t):
    traces.append(t)
    return FIELDS.velocity(x, t)

  x1, _ = jax.jit(lambda x: dopri5(field, x, 0.0, 1.0, rtol=1e-6, atol=1e-6))(X0)
  assert len(traces) == 1
  np.testing.assert_allclose(x1, _ours(X0, 1e-6)[0], atol=1e-6)
