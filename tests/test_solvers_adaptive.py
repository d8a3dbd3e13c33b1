"""Adaptive Dormand–Prince 5(4): agreement with diffrax's Dopri5 at the same tolerance,
tolerance control, NFE accounting, backward integration, vmap, and the sampler."""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data import GaussianMixture, isotropic_mixture
from diffjax.fields import gaussian_mixture_fields
from diffjax.paths import build_path, marginal_mixture
from diffjax.solvers import SAMPLERS, dopri5
from diffjax.solvers.diffrax_adapter import diffrax_solve

SMOOTH = GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-1.0, 0.0], [1.0, 0.5]]),
                         jnp.array([[[1.0, 0.3], [0.3, 0.8]], [[0.7, 0.0], [0.0, 1.2]]]))
PATH = build_path("vp")
FIELDS = gaussian_mixture_fields(SMOOTH, PATH)
X0 = marginal_mixture(PATH, SMOOTH, 0.0).sample(jax.random.PRNGKey(0), 32)


@jax.jit
def _ours(x0, tol):
  return dopri5(FIELDS.velocity, x0, 0.0, 1.0, rtol=tol, atol=tol)


def _reference():
  return jax.jit(lambda x: SAMPLERS.get("rk4")(FIELDS, PATH, x, None, num_steps=1024).x)(X0)


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
  # Step counts are comparable (same tableau, same kind of controller).
  ours_steps = int(stats.accepted) + int(stats.rejected)
  diffrax_steps = int(sol.stats["num_steps"])
  assert 0.5 * diffrax_steps <= ours_steps <= 2 * diffrax_steps + 2
  assert int(stats.nfe) == 6 * ours_steps + 2


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
  from tests.test_solvers_ode import assert_matches_mixture  # pylint: disable=g-import-not-at-top
  bimodal = isotropic_mixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], 0.5)
  fields = gaussian_mixture_fields(bimodal, PATH)
  x0 = marginal_mixture(PATH, bimodal, 0.0).sample(jax.random.PRNGKey(1), 2000)
  result = jax.jit(lambda x: SAMPLERS.get("dopri5")(fields, PATH, x, None, num_steps=4,
                                                    return_trajectory=True, rtol=1e-4,
                                                    atol=1e-4))(x0)
  assert result.trajectory.shape == (5, 2000, 2)
  assert int(result.nfe) > 4 * 8
  assert_matches_mixture(result.x, marginal_mixture(PATH, bimodal, 1.0))
  via_diffrax = jax.jit(lambda x: SAMPLERS.get("diffrax")(fields, PATH, x, None, num_steps=4,
                                                          solver="Tsit5", rtol=1e-4,
                                                          atol=1e-4).x)(x0)
  assert float(jnp.max(jnp.abs(via_diffrax - result.x))) < 0.05
