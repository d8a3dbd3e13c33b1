"""Time-series library: forecast scores against closed forms, PaD-TS's population term,
TSDiff's refinement energy, the base forecasters and the series generators / loaders."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import correlated_series, load_series, stationary_correlation
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.timeseries import crps_from_samples
from diffjax.errors import ConfigError
from diffjax.paths import build_path
from diffjax.timeseries import (channel_correlations, correlation_shift, crps_ensemble,
                                crps_gaussian, denoising_energy, fit_forecaster,
                                population_loss, rank_histogram, refine, spread_skill,
                                train_on_synthetic_test_on_real, value_shift)


# ----- scores -----

@pytest.mark.parametrize("mean, std, truth", [(0.0, 1.0, 0.0), (1.0, 2.0, -0.5),
                                              (-2.0, 0.5, 1.0)])
def test_crps_estimator_matches_the_gaussian_closed_form(mean, std, truth):
  rng = np.random.default_rng(0)
  samples = rng.normal(mean, std, (20000, 3))
  exact = crps_gaussian(mean, std, np.full(3, truth))
  np.testing.assert_allclose(crps_ensemble(samples, np.full(3, truth)), exact, rtol=0.02)
  # The fair estimator is unbiased even for 2 members: average many 2-member ensembles.
  pairs = rng.normal(mean, std, (2, 100000))
  fair = np.mean(crps_ensemble(pairs, np.full(100000, truth), fair=True))
  assert abs(fair - exact[0]) < 0.02 * std
  plain = np.mean(crps_ensemble(pairs, np.full(100000, truth)))
  assert plain > exact[0] + 0.1 * std    # The plain one penalises the small ensemble.


def test_crps_of_a_point_forecast_is_the_absolute_error_and_matches_the_pairwise_form():
  np.testing.assert_allclose(crps_ensemble(np.array([[1.5]]), np.array([0.25])), [1.25])
  rng = np.random.default_rng(1)
  samples, truth = rng.normal(size=(7, 4, 5)), rng.normal(size=(4, 5))
  np.testing.assert_allclose(crps_ensemble(samples, truth),
                             crps_from_samples(samples, truth), rtol=1e-10)
  np.testing.assert_allclose(crps_ensemble(np.moveaxis(samples, 0, 2), truth, axis=2),
                             crps_from_samples(samples, truth), rtol=1e-10)


def test_a_reliable_ensemble_has_unit_spread_skill_and_a_flat_rank_histogram():
  rng = np.random.default_rng(2)
  centres = rng.normal(size=(4000, 1))
  members = centres[None] + rng.normal(size=(8, 4000, 1))
  truth = centres + rng.normal(size=(4000, 1))
  ratio, _, _ = spread_skill(members, truth)
  assert abs(ratio - 1) < 0.05
  counts = rank_histogram(members, truth)
  assert counts.shape == (9,) and counts.sum() == 4000
  assert np.all(np.abs(counts / 4000 - 1 / 9) < 0.025)
  narrow = centres[None] + 0.3 * rng.normal(size=(8, 4000, 1))
  assert spread_skill(narrow, truth)[0] < 0.5
  u_shape = rank_histogram(narrow, truth)
  assert u_shape[0] + u_shape[-1] > 0.5 * 4000


# ----- PaD-TS -----

def test_channel_correlations_match_numpy():
  x = np.random.default_rng(3).normal(size=(5, 30, 4)).astype(np.float32)
  x[:, :, 1] += x[:, :, 0]
  got = np.asarray(channel_correlations(x))
  rows, cols = np.tril_indices(4, -1)
  expected = np.stack([np.corrcoef(s.T)[rows, cols] for s in x])
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_population_loss_is_zero_for_equal_cross_correlations():
  rng = np.random.default_rng(4)
  real = jnp.asarray(correlated_series(0, 64, 24)[0])
  # Different series with the same correlations: each channel rescaled and shifted, and
  # the batch reordered.
  scale = jnp.asarray(rng.uniform(0.5, 2.0, (64, 1, 4)), jnp.float32)
  shift = jnp.asarray(rng.normal(size=(64, 1, 4)), jnp.float32)
  generated = (real * scale + shift)[rng.permutation(64)]
  assert float(jnp.max(jnp.abs(generated - real))) > 0.5
  assert abs(float(population_loss(generated, real))) < 1e-5
  # Series with other correlations are apart, and the gradient flows to the generated.
  other = jnp.asarray(correlated_series(1, 64, 24, regime_weights=(1, 0, 0))[0])
  assert float(population_loss(other, real)) > 0.05
  grad = jax.grad(lambda g: population_loss(g, real))(other)
  assert float(jnp.max(jnp.abs(grad))) > 0


def test_correlation_shift_ranks_populations_and_value_shift_sees_marginals():
  real = correlated_series(0, 600, 24)[0]
  same = correlated_series(1, 600, 24)[0]
  one_regime = correlated_series(2, 600, 24, regime_weights=(1, 0, 0))[0]
  assert float(correlation_shift(same, real)) < 0.2 * float(correlation_shift(one_regime,
                                                                              real))
  assert float(value_shift(same, real)) < 0.2 * float(value_shift(2.0 * same, real))


def test_correlated_series_have_their_stationary_cross_correlations():
  series, regimes = correlated_series(5, 3000, 40, channels=3, rho=0.7)
  a = np.linspace(0.5, 0.9, 3)
  for r in range(3):
    pooled = series[regimes == r].reshape(-1, 3)
    np.testing.assert_allclose(np.corrcoef(pooled.T), stationary_correlation(r, a, 0.7),
                               atol=0.03)


# ----- TSDiff refine -----

def _gaussian_windows(rho=0.8):
  cov = jnp.array([[1.0, rho], [rho, 1.0]])
  return GaussianMixture(jnp.ones((1,)), jnp.zeros((1, 2)), cov[None]), cov


def test_denoising_energy_matches_its_gaussian_closed_form():
  """For x1 ~ N(0, S) on the rectified-flow path, E[x1 | x_t] = b S (b^2 S + a^2 I)^-1 x_t,
  so the expected energy of y at t is y^T M y + a^2 tr(A^T A), M = a^4 (b^2 S + a^2 I)^-2,
  A = b S (b^2 S + a^2 I)^-1."""
  path = build_path("rectified_flow")
  target, cov = _gaussian_windows()
  fields = mixture_oracle(path, target).fields()
  t = 0.6
  a, b = 1 - t, t
  inverse = jnp.linalg.inv(b ** 2 * cov + a ** 2 * jnp.eye(2))
  m = a ** 4 * inverse @ inverse
  big_a = b * cov @ inverse
  y = jnp.array([[0.5, -1.0], [1.2, 0.3]])
  expected = jnp.einsum("bi,ij,bj->b", y, m, y) + a ** 2 * jnp.trace(big_a.T @ big_a)
  energy = denoising_energy(fields, path, (t,))
  draws = jax.jit(jax.vmap(lambda k: energy(y, k)))(
      jax.random.split(jax.random.PRNGKey(0), 4000))
  np.testing.assert_allclose(jnp.mean(draws, 0), expected, rtol=0.03)


def test_most_likely_refinement_reaches_the_energy_minimiser():
  path = build_path("rectified_flow")
  target, cov = _gaussian_windows()
  fields = mixture_oracle(path, target).fields()
  t = 0.6
  inverse = jnp.linalg.inv(t ** 2 * cov + (1 - t) ** 2 * jnp.eye(2))
  m = inverse @ inverse
  contexts = jnp.array([[1.0], [-2.0]])
  best = -m[1, 0] / m[1, 1] * contexts       # argmin over h of (c, h) M (c, h)^T
  kwargs = dict(num_members=1, method="most_likely", regularizer="squared", scale=0.0,
                times=(t,))
  out = refine(fields, path, contexts, jnp.zeros((2, 1)), jax.random.PRNGKey(1),
               step_size=0.02, iterations=3000, **kwargs)
  np.testing.assert_allclose(out[:, 0], best, atol=0.08)
  # No iterations: the base forecast; a dominant prior keeps it.
  base = jnp.array([[0.3], [0.7]])
  same = refine(fields, path, contexts, base, jax.random.PRNGKey(1), iterations=0, **kwargs)
  np.testing.assert_allclose(same[:, 0], base)
  held = refine(fields, path, contexts, base, jax.random.PRNGKey(1), step_size=1e-4,
                iterations=200, **{**kwargs, "scale": 1000.0})
  np.testing.assert_allclose(held[:, 0], base, atol=0.01)


def test_langevin_refinement_spreads_members_and_bad_settings_are_refused():
  path = build_path("rectified_flow")
  target, _ = _gaussian_windows()
  fields = mixture_oracle(path, target).fields()
  out = refine(fields, path, jnp.ones((3, 1)), jnp.zeros((3, 1)), jax.random.PRNGKey(2),
               num_members=16, method="langevin", step_size=0.01, iterations=100,
               times=(0.6,))
  assert out.shape == (3, 16, 1) and float(jnp.std(out, 1).min()) > 0.05
  for bad, text in ((dict(method="hmc"), "Unknown refiner 'hmc'"),
                    (dict(regularizer="l1"), "regularizer 'l1'"),
                    (dict(times=(1.0,)), "times must be"),
                    (dict(step_size=-1.0), "step_size must be >= 0")):
    with pytest.raises((ConfigError, KeyError), match=text):
      refine(fields, path, jnp.ones((1, 1)), jnp.zeros((1, 1)), jax.random.PRNGKey(0),
             num_members=2, **bad)


def test_prior_only_langevin_samples_the_priors_closed_form():
  """With model_weight 0 the refiner sees only R = scale |h - g|^2: Langevin's discrete
  stationary law is N(g, 1 / (2 scale (1 - scale eta)))."""
  path = build_path("rectified_flow")
  out = refine(None, path, jnp.ones((1, 1)), jnp.full((1, 1), 2.0), jax.random.PRNGKey(3),
               num_members=4000, method="langevin", regularizer="squared", scale=1.0,
               step_size=0.01, iterations=600, model_weight=0.0)
  np.testing.assert_allclose(float(out.mean()), 2.0, atol=0.05)
  np.testing.assert_allclose(float(out.var()), 1 / (2 * 0.99), rtol=0.08)


# ----- forecasters and TSTR -----

def test_linear_forecaster_recovers_a_linear_rule_and_seasonal_naive_repeats_the_season():
  rng = np.random.default_rng(6)
  contexts = rng.normal(size=(300, 6))
  weights = rng.normal(size=(6, 2))
  windows = np.concatenate([contexts, contexts @ weights + 0.5], 1)
  predict = fit_forecaster("linear", windows, 6, 2, ridge=1e-8)
  np.testing.assert_allclose(predict(contexts[:5]), windows[:5, 6:], atol=1e-5)
  naive = fit_forecaster("seasonal_naive", windows, 6, 2, season=3)
  np.testing.assert_array_equal(naive(contexts[:2]), contexts[:2, 3:5])
  with pytest.raises(ConfigError, match="horizon <= season <= context"):
    fit_forecaster("seasonal_naive", windows, 6, 2, season=12)
  scores = train_on_synthetic_test_on_real(windows, windows, windows[:50], 6, 2)
  assert scores["tstr_ratio"] == pytest.approx(1.0)
  noise = rng.normal(size=windows.shape)
  assert train_on_synthetic_test_on_real(noise, windows, windows[:50], 6, 2)[
      "tstr_ratio"] > 2


# ----- users' files -----

def test_series_loader_reads_csv_and_npz_and_refuses_bad_files(tmp_path):
  csv = tmp_path / "series.csv"
  csv.write_text("a,b\n1,2\n3,4\n5,6\n")
  np.testing.assert_array_equal(load_series(str(csv), channels=2), [[1, 2], [3, 4], [5, 6]])
  npz = tmp_path / "series.npz"
  np.savez(npz, series=np.arange(10.0))
  assert load_series(str(npz)).shape == (10, 1)
  cases = [("nan.csv", "1,2\n3,\n", dict(), "NaN or infinite value at index (1, 1)"),
           ("text.csv", "1,2\n3,x\n", dict(), "row 2, column 2: 'x' is not a number"),
           ("ragged.csv", "1,2\n3\n", dict(), "different numbers of columns"),
           ("three.csv", "1,2,3\n4,5,6\n", dict(channels=2), "has 3 channels; "
                                                             "data.channels=2")]
  for name, text, kwargs, message in cases:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
      load_series(str(path), **kwargs)
  with pytest.raises(ConfigError, match="does not exist"):
    load_series(str(tmp_path / "missing.csv"))

