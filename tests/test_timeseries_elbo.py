"""TSDiff refine's second energy: the continuous-time ELBO, against its Gaussian closed
form, and the most-likely refinement it drives to the conditional mean."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.errors import ConfigError
from diffjax.paths import build_path
from diffjax.timeseries import elbo_energy, refine

RHO = 0.8
COV = np.array([[1.0, RHO], [RHO, 1.0]])


def _oracle():
  path = build_path("rectified_flow")
  target = GaussianMixture(jnp.ones((1,)), jnp.zeros((1, 2)), jnp.asarray(COV)[None])
  return path, mixture_oracle(path, target).fields()


def _elbo_closed_form(t0, t1, num=4001):
  """(Q, c): the expected ELBO energy of y is y^T Q y + c for x1 ~ N(0, COV) on the
  rectified-flow path (alpha = t, sigma = 1 - t, SNR'/2 = t / (1 - t)^3): at t,
  E |y - x1_hat|^2 = y^T M y + a^2 tr(A^T A), M = a^4 (b^2 S + a^2 I)^-2,
  A = b S (b^2 S + a^2 I)^-1 (midpoint rule over t)."""
  edges = np.linspace(t0, t1, num + 1)
  q, c = np.zeros((2, 2)), 0.0
  for t in 0.5 * (edges[1:] + edges[:-1]):
    a, b = 1 - t, t
    inverse = np.linalg.inv(b * b * COV + a * a * np.eye(2))
    weight = t / (1 - t) ** 3 * (t1 - t0) / num
    big_a = b * COV @ inverse
    q += weight * a ** 4 * inverse @ inverse
    c += weight * a * a * np.trace(big_a.T @ big_a)
  return q, c


def test_elbo_energy_matches_its_gaussian_closed_form_and_is_the_log_density():
  path, fields = _oracle()
  q, c = _elbo_closed_form(0.0, 0.95)
  energy = jax.jit(elbo_energy(fields, path, (0.0, 0.95)))
  for i, y in enumerate(([0.5, -1.0], [1.5, 1.0])):
    rows = jnp.tile(jnp.asarray(y, jnp.float32), (40000, 1))
    estimate = float(jnp.mean(energy(rows, jax.random.PRNGKey(i))))
    np.testing.assert_allclose(estimate, np.dot(y, q @ y) + c, rtol=0.03)
  # Over (almost) the whole range the quadratic part is -log N(y; 0, COV) = y^T COV^-1 y / 2.
  np.testing.assert_allclose(_elbo_closed_form(0.0, 0.999)[0], 0.5 * np.linalg.inv(COV),
                             atol=2e-3)


def test_most_likely_elbo_refinement_reaches_the_conditional_mean():
  path, fields = _oracle()
  contexts = jnp.array([[1.0], [-2.0]])
  q, _ = _elbo_closed_form(0.0, 0.95)
  best = -q[1, 0] / q[1, 1] * np.asarray(contexts)   # ~ RHO * context, E[h | c]
  assert np.allclose(best, RHO * np.asarray(contexts), atol=0.01)
  out = refine(fields, path, contexts, jnp.zeros((2, 1)), jax.random.PRNGKey(1),
               num_members=64, method="most_likely", regularizer="squared", scale=0.0,
               step_size=0.01, iterations=1500, times=(0.0, 0.95), energy="elbo")
  # Each member descends a noisy estimate of the energy: their mean sits at the minimiser.
  np.testing.assert_allclose(out.mean(1), best, atol=0.05)


@pytest.mark.parametrize("times", [(0.5,), (0.9, 0.2), (0.1, 1.0)])
def test_elbo_refinement_refuses_a_bad_time_range(times):
  path, fields = _oracle()
  with pytest.raises(ConfigError, match=r"0 <= t0 < t1 < 1; got"):
    refine(fields, path, jnp.ones((1, 1)), jnp.zeros((1, 1)), jax.random.PRNGKey(0),
           num_members=1, times=times, energy="elbo")
