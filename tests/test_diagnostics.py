"""Hallucination detector and intrinsic dimension on closed forms: the exact mixture
oracle, the exact score of a Gaussian on a linear subspace, linear fields."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import isotropic_mixture, mixture_oracle, ring_mixture
from diffjax.data.manifolds import MANIFOLDS, linear_subspace_score, subspace_basis
from diffjax.diagnostics import hallucination as hal
from diffjax.diagnostics import intrinsic_dimension as idim
from diffjax.errors import ConfigError
from diffjax.paths import build_path
from diffjax.solvers import sample


def _three_modes():
  return isotropic_mixture(jnp.ones(3) / 3, jnp.array([[1.0], [2.0], [3.0]]), 0.05)


def test_trajectory_variance_is_the_variance_over_the_window():
  records = jnp.asarray(np.arange(10.0)).reshape(10, 1, 1) * jnp.ones((1, 2, 3))
  # Last 4 values 6, 7, 8, 9: variance 1.25 per dimension, summed over 3 dimensions.
  np.testing.assert_allclose(hal.trajectory_variance(records, 4), [3.75, 3.75], rtol=1e-6)
  with pytest.raises(ConfigError, match="window of 11 steps"):
    hal.trajectory_variance(records, 11)


def test_recorded_predictions_are_the_data_predictions_along_the_trajectory():
  path = build_path("vp")
  oracle = mixture_oracle(path, _three_modes())
  x0 = jax.random.normal(jax.random.PRNGKey(0), (16, 1))
  solution = hal.sample_with_data_predictions("ddim", oracle.fields(), path, x0,
                                              num_steps=8)
  plain = sample("ddim", oracle.fields(), path, x0, num_steps=8, return_trajectory=True)
  np.testing.assert_allclose(solution.x, plain.x, atol=1e-6)   # recording changes nothing
  ts = jnp.linspace(0.0, 1.0, 9)
  expected = jax.vmap(oracle.data)(plain.trajectory[:-1], ts[:-1])
  np.testing.assert_allclose(solution.records, expected, atol=1e-5)
  assert int(solution.nfe) == 8   # the sampler's own evaluations


def test_exact_denoiser_does_not_hallucinate_and_its_samples_score_low():
  path = build_path("vp")
  mixture = _three_modes()
  x0 = jax.random.normal(jax.random.PRNGKey(1), (500, 1))
  solution = jax.jit(lambda x: hal.sample_with_data_predictions(
      "ancestral", mixture_oracle(path, mixture).fields(), path, x,
      jax.random.PRNGKey(2), num_steps=250))(x0)
  assert bool(jnp.all(hal.in_support(solution.x, mixture.means, 6 * 0.05)))
  scores = hal.trajectory_variance(solution.records, 12)
  # In-support samples settle on their mode: over the last steps x1_hat ~ x moves by the
  # order of the mode's std (0.05), not of the mode spacing (1: a swing between two modes
  # has variance ~ 0.25).
  assert float(jnp.quantile(scores, 0.95)) < 2 * 0.05 ** 2
  assert float(jnp.max(scores)) < 0.25 / 4
  # Its samples are the mixture's: their W2 to fresh mixture draws is within the sampling
  # floor's spread (4 stds); samples all on one mode are far above it (W2 ~ 0.8: 2/3 of
  # the mass moves by 1).
  none = np.zeros(500, bool)
  w2 = hal.in_support_w2(solution.x, none, mixture.sample, jax.random.PRNGKey(3))
  assert w2["w2_points"] == 500 and w2["w2_floor"] > 0
  assert w2["w2_in_support"] < w2["w2_floor"] + 4 * w2["w2_floor_std"]
  one_mode = np.asarray(solution.x)[np.abs(np.asarray(solution.x)[:, 0] - 2.0) < 0.3]
  collapsed = hal.in_support_w2(one_mode, np.zeros(len(one_mode), bool), mixture.sample,
                                jax.random.PRNGKey(3))
  assert collapsed["w2_in_support"] > max(
      0.5, collapsed["w2_floor"] + 4 * collapsed["w2_floor_std"])


def test_detector_misses_the_exact_denoisers_separatrix_sample():
  """Where the detector fails: the exact ODE started on the separatrix of two symmetric
  modes stays between them (a hallucination) with a constant x1_hat = 0, score 0, below
  every in-support sample; the detector relies on a learned model's swinging x1_hat."""
  path = build_path("vp")
  mixture = isotropic_mixture(jnp.ones(2) / 2, jnp.array([[-1.0], [1.0]]), 0.05)
  x0 = jnp.concatenate([jnp.zeros((1, 1)),
                        jax.random.normal(jax.random.PRNGKey(3), (255, 1))])
  solution = hal.sample_with_data_predictions(
      "ddim", mixture_oracle(path, mixture).fields(), path, x0, num_steps=100)
  hallucinated = ~np.asarray(hal.in_support(solution.x, mixture.means, 0.3))
  scores = np.asarray(hal.trajectory_variance(solution.records, 12))
  assert hallucinated[0] and not hallucinated[1:].any()
  assert scores[0] <= scores[1:].min()
  threshold = hal.best_threshold(scores, hallucinated)
  assert hal.detector_rates(scores, hallucinated, threshold)["removed"] == 0.0


def test_detector_rates_and_best_threshold():
  scores = np.array([0.1, 0.2, 0.3, 5.0, 6.0, 0.35])
  hallucinated = np.array([False, False, False, True, True, True])
  threshold = hal.best_threshold(scores, hallucinated)
  assert threshold == 0.3
  assert hal.detector_rates(scores, hallucinated, threshold) == {"removed": 1.0, "kept": 1.0}
  assert hal.detector_rates(scores, hallucinated, 0.15) == {"removed": 1.0, "kept": 1 / 3}
  with pytest.raises(ValueError, match="both hallucinated and in-support"):
    hal.best_threshold(scores, np.zeros(6, bool))
  # Fitted on the first four samples (threshold 0.3), rated on the last two: 0.35 > 0.3
  # removes the hallucination, and the in-support 0.25 is kept.
  held_out = hal.held_out_rates(np.append(scores[:4], [0.35, 0.25]),
                                np.append(hallucinated[:4], [True, False]), 4)
  assert held_out == {"threshold": 0.3, "removed": 1.0, "kept": 1.0}
  assert hal.held_out_rates(scores, hallucinated, 3) is None   # no hallucination to fit


def test_adaptive_sampler_refused():
  path = build_path("vp")
  fields = mixture_oracle(path, _three_modes()).fields()
  with pytest.raises(ConfigError, match="adaptive"):
    hal.sample_with_data_predictions("dopri5", fields, path, jnp.zeros((2, 1)), num_steps=4)


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.1])
def test_exact_gaussian_score_on_a_linear_subspace_gives_dimension_three(sigma):
  basis = subspace_basis()
  alpha = float(np.sqrt(1 - sigma ** 2))          # a VP-type point on the path
  score = linear_subspace_score(basis, alpha, sigma)
  x1 = MANIFOLDS.get("linear_subspace").sample(jax.random.PRNGKey(0), 32)
  x = alpha * x1 + sigma * jax.random.normal(jax.random.PRNGKey(1), x1.shape)
  jac = idim.score_jacobians(score, x)
  closed = -np.linalg.inv(alpha ** 2 * basis @ basis.T + sigma ** 2 * np.eye(10))
  # float32 inverse of a matrix of condition number 1 / sigma^2: entries of J are of size
  # up to 1 / sigma^2, compare to 5e-4 of that.
  np.testing.assert_allclose(jac, np.broadcast_to(closed, jac.shape), rtol=0,
                             atol=5e-4 / sigma ** 2)
  assert np.all(np.asarray(idim.estimate_dimension(jac, sigma)) == 3)
  assert np.all(np.asarray(idim.largest_gap_dimension(jac)) == 3)
  # -sigma^2 J has eigenvalues 1 (normal) and sigma^2 / (alpha^2 + sigma^2) (tangent).
  values = np.asarray(sigma ** 2 * idim.singular_values(jac))
  np.testing.assert_allclose(values[:, :7], 1.0, rtol=2e-3)
  np.testing.assert_allclose(values[:, 7:], sigma ** 2 / (alpha ** 2 + sigma ** 2),
                             rtol=2e-3)


def test_exact_score_is_conservative_and_a_rotation_is_not():
  path = build_path("vp")
  oracle = mixture_oracle(path, ring_mixture(num_modes=8, radius=2.0, std=0.3))
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  jac = jax.jit(lambda y: idim.score_jacobians(lambda v: oracle.score(v, 0.7), y))(x)
  assert float(jnp.max(idim.jacobian_asymmetry(jac))) < 1e-4
  # A linear field A x with A = S + K: ||A - A^T|| / ||A|| = ||2 K|| / sqrt(||S||^2 + ||K||^2).
  s, k = jnp.array([[-2.0, 0.5], [0.5, -1.0]]), jnp.array([[0.0, 0.7], [-0.7, 0.0]])
  jac = idim.score_jacobians(lambda y: y @ (s + k).T, x[:3])
  expected = 2 * 0.7 * np.sqrt(2) / np.sqrt(4 + 0.25 * 2 + 1 + 0.49 * 2)
  np.testing.assert_allclose(idim.jacobian_asymmetry(jac), expected, rtol=1e-5)


def test_two_nn_on_known_manifolds():
  # 2,000 points: the estimator's relative standard error is about 1 / sqrt(N) ~ 2%.
  for name, truth in (("sphere", 2), ("linear_subspace", 3), ("circle", 1)):
    points = MANIFOLDS.get(name).sample(jax.random.PRNGKey(0), 2000)
    assert abs(idim.two_nn_dimension(points) - truth) < 0.15 * truth


def test_bad_threshold_refused():
  with pytest.raises(ConfigError, match="threshold"):
    idim.estimate_dimension(jnp.zeros((1, 2, 2)), 0.1, threshold=1.5)
