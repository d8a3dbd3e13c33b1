"""Toy 2D samplers: shapes, determinism and exact geometry (with the noise switched off)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import TOY_2D, get_sampler
from diffjax.data import toy2d
from diffjax.registry import UnknownComponentError

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("name", TOY_2D.names())
def test_every_sampler_is_jittable_and_deterministic(name):
  sample = jax.jit(TOY_2D.get(name), static_argnums=1)
  x = sample(KEY, 512)
  assert x.shape == (512, 2) and x.dtype == jnp.float32
  assert np.all(np.isfinite(x))
  np.testing.assert_array_equal(x, sample(KEY, 512))
  assert not np.allclose(x, sample(jax.random.PRNGKey(1), 512))


def test_unknown_toy_lists_valid_names():
  with pytest.raises(UnknownComponentError, match="Unknown 2D toy distribution 'moon'; "
                     "valid names are: .*moons"):
    get_sampler("moon")


def test_standard_normal_moments():
  x = np.asarray(toy2d.standard_normal(KEY, 20_000))
  np.testing.assert_allclose(x.mean(0), 0, atol=0.03)   # 4 standard errors.
  np.testing.assert_allclose(np.cov(x.T), np.eye(2), atol=0.04)


def test_eight_gaussians_modes():
  x = np.asarray(toy2d.eight_gaussians(KEY, 4000, std=0.0))
  angles = np.round(np.arctan2(x[:, 1], x[:, 0]) / (2 * math.pi / 8)) % 8
  np.testing.assert_allclose(np.linalg.norm(x, axis=1), 5.0, rtol=1e-5)
  assert set(angles.astype(int)) == set(range(8))
  np.testing.assert_allclose(np.bincount(angles.astype(int)) / 4000, 1 / 8, atol=0.025)


def test_moons_lie_on_their_arcs():
  x = (np.asarray(toy2d.moons(KEY, 2000, noise=0.0)) + 1) / 3
  outer = np.abs(np.linalg.norm(x, axis=1) - 1) < 1e-5
  inner = np.abs(np.linalg.norm(x - [1.0, 0.5], axis=1) - 1) < 1e-5
  assert np.all(outer | inner)
  assert np.all(x[outer, 1] >= -1e-6) and np.all(x[inner, 1] <= 0.5 + 1e-6)
  assert 0.45 < outer.mean() < 0.55


def test_checkerboard_only_dark_squares():
  x = np.asarray(toy2d.checkerboard(KEY, 5000))
  cell = np.floor((x + 2.0) / 1.0).astype(int)
  assert np.all((cell >= 0) & (cell < 4))
  assert np.all(cell.sum(1) % 2 == 0)


def test_circles_radii():
  radius = np.linalg.norm(np.asarray(toy2d.circles(KEY, 2000, noise=0.0)), axis=1)
  assert np.all(np.isclose(radius, 4.0, rtol=1e-5) | np.isclose(radius, 2.0, rtol=1e-5))


def test_swiss_roll_radius_equals_angle():
  x = np.asarray(toy2d.swiss_roll(KEY, 1000, noise=0.0, scale=1.0))
  radius = np.linalg.norm(x, axis=1)
  assert np.all((radius > 1.5 * math.pi - 1e-4) & (radius < 4.5 * math.pi + 1e-4))
  np.testing.assert_allclose(np.cos(radius), x[:, 0] / radius, atol=1e-3)


def test_s_curve_on_curve():
  x = np.asarray(toy2d.s_curve(KEY, 1000, noise=0.0, scale=1.0))
  t = np.arcsin(np.clip(x[:, 0], -1, 1))  # Recover t on the branch |t| <= pi / 2 ...
  # ... and check the defining relation y = sign(t) (cos t - 1) for all points.
  np.testing.assert_allclose(np.abs(x[:, 1]), 1 - np.cos(np.arcsin(np.abs(x[:, 0])))
                             + 2 * (np.abs(x[:, 1]) > 1 + 1e-6) * np.cos(t), atol=1e-4)


def test_spirals_two_arms():
  x = np.asarray(toy2d.spirals(KEY, 2000, noise=0.0))
  r = np.linalg.norm(x, axis=1) / 4.0
  expected = 2 * math.pi * 1.5 * r
  angle = np.arctan2(x[:, 1], x[:, 0])
  phase = np.mod(angle - expected, 2 * math.pi)
  on_arm = np.minimum(np.abs(phase), np.abs(phase - 2 * math.pi)) < 1e-3
  on_other = np.abs(phase - math.pi) < 1e-3
  assert np.all(on_arm | on_other) and 0.4 < on_arm.mean() < 0.6
