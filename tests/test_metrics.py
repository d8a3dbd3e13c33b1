"""Sample-quality metrics against cases with known answers."""
import numpy as np
import pytest

from diffjax.metrics import compute_metrics, energy_distance, wasserstein2
from diffjax.registry import UnknownComponentError

RNG = np.random.default_rng(0)


def test_w2_of_a_translation_is_the_shift():
  # For y = x + c the identity plan is optimal (cyclical monotonicity), so W2 = |c|.
  x = RNG.normal(size=(300, 2))
  c = np.array([0.7, -0.2])
  assert wasserstein2(x, x + c) == pytest.approx(np.linalg.norm(c), rel=1e-6)


def test_w2_ignores_order_and_is_zero_on_identical_sets():
  x = RNG.normal(size=(200, 3))
  assert wasserstein2(x, x[RNG.permutation(200)]) == pytest.approx(0, abs=1e-6)


def test_w2_of_two_points_by_hand():
  x = np.array([[0.0, 0.0], [10.0, 0.0]])
  y = np.array([[9.0, 0.0], [1.0, 0.0]])  # Optimal: 0 -> 1, 10 -> 9: cost 1 each.
  assert wasserstein2(x, y) == pytest.approx(1.0)


def test_energy_distance_matches_brute_force():
  x, y = RNG.normal(size=(80, 2)), RNG.normal(size=(60, 2)) + 1
  d = lambda a, b: np.mean(np.linalg.norm(a[:, None] - b[None], axis=-1))
  expected = 2 * d(x, y) - d(x, x) - d(y, y)
  assert energy_distance(x, y) == pytest.approx(expected, rel=1e-3, abs=1e-4)
  assert energy_distance(x, x) == pytest.approx(0, abs=1e-3)


def test_bad_inputs():
  with pytest.raises(ValueError, match=r"\(N, D\) and \(M, D\) samples; got \(5, 2\) and "
                     r"\(5, 3\)"):
    wasserstein2(np.zeros((5, 2)), np.zeros((5, 3)))
  with pytest.raises(UnknownComponentError, match="Unknown metric 'fid'; valid names are"):
    compute_metrics(["fid"], np.zeros((5, 2)), np.zeros((5, 2)))
