"""Fréchet distance against closed forms; the digits classifier and its proxy metrics."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from diffjax import image_metrics
from diffjax.image_plots import sample_grid_figure


def test_frechet_distance_closed_forms():
  mu1, mu2 = np.array([1.0, 2.0]), np.array([0.0, 0.0])
  # Commuting covariances: tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(a_i) - sqrt(b_i))^2.
  s1, s2 = np.diag([4.0, 9.0]), np.diag([1.0, 16.0])
  expected = 5.0 + (2 - 1) ** 2 + (3 - 4) ** 2
  assert image_metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
  # Non-commuting: S1 = I, S2 = R diag(1, 4) R^T: sqrt(S1 S2) = R diag(1, 2) R^T, trace 3.
  c, s = np.cos(0.7), np.sin(0.7)
  rot = np.array([[c, -s], [s, c]])
  s2 = rot @ np.diag([1.0, 4.0]) @ rot.T
  assert image_metrics.frechet_distance(mu2, np.eye(2), mu2, s2) == pytest.approx(
      2 + 5 - 2 * 3, rel=1e-10)
  # Singular covariances: distance to itself is 0 (up to the square roots of rounding
  # errors in the zero eigenvalues), not NaN.
  a = np.random.default_rng(0).standard_normal((5, 3))
  singular = a @ a.T  # Rank 3 in 5 dimensions.
  fd = image_metrics.frechet_distance(np.zeros(5), singular, np.zeros(5), singular)
  assert abs(fd) < 1e-6 * np.trace(singular)


def test_frechet_distance_from_samples_matches_closed_form():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((20_000, 3)) * np.array([1.0, 2.0, 3.0])
  y = rng.standard_normal((20_000, 3)) + np.array([1.0, 0.0, 0.0])
  expected = 1.0 + (1 - 1) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
  assert image_metrics.frechet_distance_from_features(x, y) == pytest.approx(expected, rel=0.05)


@pytest.fixture(scope="module")
def classifier():
  return image_metrics.digits_classifier(seed=0)


def test_digits_classifier_accuracy_on_held_out_digits(classifier):
  images, labels = image_metrics.digits_reference_images("test")
  # Stated accuracy: at least 95% on the 300 held-out real digits (99.3% with seed 0).
  assert classifier.accuracy(images, labels) >= 0.95
  # Nearest-upsampled 16x16 digits are averaged back to 8x8: the same predictions.
  big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
  np.testing.assert_allclose(classifier.logits(big), classifier.logits(images), atol=1e-4)
  # Class accuracy of "samples" with the wrong labels is low.
  assert image_metrics.digits_class_accuracy(images, (labels + 1) % 10, classifier) < 0.1


def test_digits_proxy_frechet_distance_separates_real_from_noise(classifier):
  test_images, _ = image_metrics.digits_reference_images("test")
  train_images, _ = image_metrics.digits_reference_images("train")
  real = image_metrics.digits_frechet_distance(test_images, train_images[:300], classifier)
  rng = np.random.default_rng(0)
  noise = rng.uniform(-1, 1, test_images.shape).astype(np.float32)
  blurred = np.clip(test_images + 0.5 * rng.standard_normal(test_images.shape), -1, 1)
  noisy = image_metrics.digits_frechet_distance(blurred, train_images[:300], classifier)
  fake = image_metrics.digits_frechet_distance(noise, train_images[:300], classifier)
  assert 0 <= real < noisy < fake and fake > 10 * real


def test_sample_grid_figure():
  images = np.random.default_rng(0).uniform(-1, 1, (10, 8, 8, 1))
  fig = sample_grid_figure(images, num_columns=4, title="digits")
  assert isinstance(fig, Figure)
  grid = fig.axes[0].images[0].get_array()
  assert grid.shape[:2] == (3 * 8 + 2 * 1, 4 * 8 + 3 * 1)  # 3 rows, 4 columns, 1px gaps.
  assert grid.min() >= 0 and grid.max() <= 1
  colour = sample_grid_figure(np.zeros((4, 4, 4, 3)), num_columns=2)
  assert colour.axes[0].images[0].get_array().shape == (9, 9, 3)
