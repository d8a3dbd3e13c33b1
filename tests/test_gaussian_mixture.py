"""Gaussian mixtures: exact log-density, score and sampling against independent checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from diffjax.data import GaussianMixture, ring_mixture


def _random_mixture(key, k=3, d=2):
  k_w, k_m, k_c = jax.random.split(key, 3)
  weights = jax.nn.softmax(jax.random.normal(k_w, (k,)))
  means = 3 * jax.random.normal(k_m, (k, d))
  a = jax.random.normal(k_c, (k, d, d))
  covs = jnp.einsum("kij,klj->kil", a, a) + 0.3 * jnp.eye(d)[None]
  return GaussianMixture(weights, means, covs)


def test_log_prob_matches_scipy():
  gm = _random_mixture(jax.random.PRNGKey(0))
  x = np.random.default_rng(0).normal(size=(50, 2)) * 3
  expected = np.log(sum(
      float(w) * stats.multivariate_normal(np.asarray(m), np.asarray(c)).pdf(x)
      for w, m, c in zip(gm.weights, gm.means, gm.covariances)))
  np.testing.assert_allclose(gm.log_prob(jnp.asarray(x, jnp.float32)), expected, rtol=1e-4,
                             atol=1e-4)


def test_score_is_the_gradient_of_the_log_density():
  gm = _random_mixture(jax.random.PRNGKey(1), k=4, d=3)
  x = 2 * jax.random.normal(jax.random.PRNGKey(2), (64, 3))
  autodiff = jax.vmap(jax.grad(lambda y: gm.log_prob(y[None])[0]))(x)
  np.testing.assert_allclose(gm.score(x), autodiff, rtol=1e-4, atol=1e-5)


def test_samples_have_the_mixture_moments():
  gm = _random_mixture(jax.random.PRNGKey(3))
  x = np.asarray(gm.sample(jax.random.PRNGKey(4), 100_000))
  mean = np.einsum("k,kd->d", gm.weights, gm.means)
  second = np.einsum("k,kij->ij", gm.weights, gm.covariances + jnp.einsum(
      "ki,kj->kij", gm.means, gm.means))
  cov = second - np.outer(mean, mean)
  std = np.sqrt(np.diag(cov))
  assert np.all(np.abs(x.mean(0) - mean) < 5 * std / np.sqrt(len(x)))  # 5 std errors.
  np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.03, atol=0.03 * std.max() ** 2)


def test_mixture_is_a_pytree_usable_under_jit():
  gm = ring_mixture()
  assert jax.jit(lambda g, x: g.log_prob(x))(gm, jnp.zeros((2, 2))).shape == (2,)


def test_bad_shapes_are_refused():
  with pytest.raises(ValueError, match=r"weights \(K,\), means \(K, D\)"):
    GaussianMixture(jnp.ones(2) / 2, jnp.zeros((3, 2)), jnp.tile(jnp.eye(2), (3, 1, 1)))
