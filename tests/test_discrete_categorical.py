"""Categorical sampling: the default draws a token of probability 1e-7 at its true rate; the
float32 Gumbel-max switch draws it at about half that rate (computed exactly over every
float32 uniform the switch can use)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.categorical import (float32_uniform, gumbel_from_uniform, sample_categorical,
                                 uniform_64bit)
from diffjax.errors import ConfigError


@pytest.mark.parametrize("method", ["inverse_cdf", "gumbel_float32"])
def test_ordinary_distributions_and_shapes(method):
  p = np.array([0.5, 0.25, 0.15, 0.1, 0.0])
  logits = jnp.log(jnp.asarray(np.tile(p, (64, 3, 1)), jnp.float32))  # (B, L, V), -inf
  draw = jax.jit(lambda key: sample_categorical(key, logits, method=method))
  draws = np.stack([np.asarray(draw(jax.random.PRNGKey(i))) for i in range(40)])
  assert draws.shape == (40, 64, 3) and draws.dtype == np.int32
  freq = np.bincount(draws.ravel(), minlength=5) / draws.size
  # 7680 draws: 4 standard errors of each frequency.
  np.testing.assert_array_less(np.abs(freq - p), 4 * np.sqrt(p * (1 - p) / draws.size) + 1e-9)


def test_a_token_of_probability_1e_7_is_drawn_at_its_true_rate():
  # 400,000 tokens of probability 1e-7 on either side of one token holding the rest: 2^18
  # draws from this one distribution expect 10,486 small-token draws (standard error 102).
  k, n = 400_000, 2 ** 18
  logits = np.full(k + 1, np.log(1e-7), np.float32)
  logits[k // 2] = np.log1p(-k * 1e-7)
  ids = np.asarray(jax.jit(lambda key: sample_categorical(key, jnp.asarray(logits),
                                                          shape=(n,)))(jax.random.PRNGKey(0)))
  small = ids != k // 2
  expected = n * k * 1e-7
  assert abs(small.sum() - expected) < 4 * np.sqrt(expected), small.sum()
  # The small tokens before and after the large one are hit alike.
  before = np.sum(ids[small] < k // 2)
  assert abs(before - small.sum() / 2) < 4 * np.sqrt(small.sum() / 4)


def test_float32_gumbel_max_draws_a_1e_7_token_at_half_its_rate():
  # The switch's uniforms lie on a grid of spacing 2^-23 (checked on a sample), so its
  # probability of drawing token s over token b is exactly the fraction of grid pairs
  # (u_s, u_b) with g(u_s) + log p_s > g(u_b) + log p_b, g = -log(-log u).
  u = np.asarray(float32_uniform(jax.random.PRNGKey(0), (1 << 20,)), np.float64)
  assert np.all(u * 2.0 ** 23 == np.round(u * 2.0 ** 23))
  grid = np.maximum(np.arange(1 << 23) * 2.0 ** -23, np.finfo(np.float32).tiny)
  g = np.sort(np.asarray(gumbel_from_uniform(jnp.asarray(grid, jnp.float32))))
  for p, low, high in ((1e-7, 0.50, 0.54), (1e-8, 0.0, 1e-3)):
    gap = np.float32(np.log1p(-p)) - np.float32(np.log(p))
    rate = np.searchsorted(g, g - gap).sum() / 2.0 ** 46
    assert low <= rate / p <= high, (p, rate / p)
  # The default's uniforms resolve far below 2^-23: near 0 they are off that grid.
  fine = np.asarray(uniform_64bit(jax.random.PRNGKey(1), (1 << 20,)), np.float64)
  assert 0.0 <= fine.min() and fine.max() <= 1.0
  small = fine[fine < 2.0 ** -10]  # About 1,000 values, spaced 2^-34 apart at most.
  assert len(small) > 500 and np.mean(small * 2.0 ** 23 == np.round(small * 2.0 ** 23)) < 0.01


def test_unknown_method_is_refused():
  with pytest.raises(ConfigError, match="Unknown categorical sampling method 'float64'"):
    sample_categorical(jax.random.PRNGKey(0), jnp.zeros(3), method="float64")
