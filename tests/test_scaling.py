"""Compute accounting and scaling-law fits (`diffjax.scaling`) against closed forms."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax import scaling


def test_xla_counts_a_matrix_product_as_two_m_n_k():
  a, b = jax.ShapeDtypeStruct((8, 16), jnp.float32), jax.ShapeDtypeStruct((16, 4), jnp.float32)
  assert scaling.xla_flops(jnp.dot, a, b) == 2 * 8 * 16 * 4


def test_non_embedding_parameters_leave_out_the_token_and_position_tables():
  params = {"Embed_0": {"embedding": np.zeros((97, 8))}, "position_embedding": np.zeros((64, 8)),
            "Dense_0": {"kernel": np.zeros((8, 3)), "bias": np.zeros(3)}}
  assert scaling.non_embedding_parameters(params) == 27
  assert scaling.six_nd(27, 1000) == 6 * 27 * 1000


def test_power_law_fit_frontier_and_compute_multiple():
  compute = np.array([1e12, 3e12, 9e12])
  law = scaling.PowerLaw(50.0, 0.08)
  fit = scaling.fit_power_law(compute, law.loss(compute))
  assert fit.scale == pytest.approx(50.0, rel=1e-6)
  assert fit.exponent == pytest.approx(0.08, rel=1e-6)
  # Each budget's best run: the frontier.
  budgets, best = scaling.frontier([1, 1, 2, 2], [3.0, 2.5, 2.2, 2.4])
  np.testing.assert_array_equal(budgets, [1, 2])
  np.testing.assert_array_equal(best, [2.5, 2.2])
  # A law that needs 16x the compute for every loss: A' = A 16^alpha.
  slower = scaling.PowerLaw(50.0 * 16 ** 0.08, 0.08)
  np.testing.assert_allclose(scaling.compute_multiple(law, slower, [3.0, 2.0]), 16.0, rtol=1e-9)
  with pytest.raises(ValueError, match="at least two"):
    scaling.fit_power_law([1e12], [2.0])
