"""TRADES: the stylised-fact statistics against closed forms, the market experiment end to
end on its :tiny config, and bad settings refused in one line before the workdir."""
import os

import numpy as np
import pytest

import experiments
from diffjax.data.order_book import DEPTH_LEVELS, OrderStream
from diffjax.errors import ConfigError
from diffjax.science import no_change_mae, pooled_facts, stylised_facts
from diffjax.science.order_flow import autocorrelation
from diffjax.train.workdir import read_metrics

LAGS = (1, 2, 3)


def _stream(returns, interval=1):
  """An `OrderStream` whose mid moves by `returns` every `interval` events."""
  steps = np.zeros(len(returns) * interval)
  steps[::interval] = returns
  n = len(steps)
  mids = np.concatenate([[0.0], np.cumsum(steps)])
  return OrderStream(np.arange(1.0, n + 1), np.zeros(n, np.int64), np.zeros(n, np.int64),
                     np.ones(n, np.int64), mids, np.ones(n + 1, np.int64),
                     np.ones((n + 1, 2 * DEPTH_LEVELS), np.int64))


def test_gaussian_returns_have_no_excess_kurtosis_and_no_autocorrelation():
  rng = np.random.default_rng(0)
  facts = stylised_facts(_stream(rng.standard_normal(40000), 3), 3, LAGS)
  assert len(facts["returns"]) == 40000
  assert abs(facts["excess_kurtosis"]) < 0.12              # std of the estimate 0.025
  assert np.all(np.abs(facts["return_acf"]) < 0.02)         # std 0.005
  assert np.all(np.abs(facts["abs_return_acf"]) < 0.02)


def test_laplace_tails_and_ar1_autocorrelation_match_their_closed_forms():
  rng = np.random.default_rng(1)
  laplace = stylised_facts(_stream(rng.laplace(size=200000)), 1, LAGS)
  assert laplace["excess_kurtosis"] == pytest.approx(3.0, abs=0.25)
  phi, r = 0.6, np.zeros(100000)
  noise = rng.standard_normal(len(r))
  for i in range(1, len(r)):
    r[i] = phi * r[i - 1] + noise[i]
  np.testing.assert_allclose(autocorrelation(r, LAGS), phi ** np.array(LAGS), atol=0.02)


def test_regime_volatility_clusters_as_its_closed_form():
  """r_t = s_t z_t with s_t in {1, 3} a symmetric Markov chain switching with probability
  p: corr(|r_t|, |r_t+k|) = m^2 Var(s) (1 - 2 p)^k / (E s^2 - m^2 (E s)^2), m = E|z| =
  sqrt(2 / pi); excess kurtosis 3 E s^4 / (E s^2)^2 - 3."""
  rng = np.random.default_rng(2)
  p, levels, n = 0.05, np.array([1.0, 3.0]), 200000
  state = np.cumsum(rng.uniform(size=n) < p) % 2
  facts = stylised_facts(_stream(levels[state] * rng.standard_normal(n)), 1, LAGS)
  m2 = 2 / np.pi
  expected = (m2 * np.var(levels) * (1 - 2 * p) ** np.array(LAGS) /
              (np.mean(levels ** 2) - m2 * np.mean(levels) ** 2))
  np.testing.assert_allclose(facts["abs_return_acf"], expected, atol=0.03)
  assert np.all(np.abs(facts["return_acf"]) < 0.02)
  kurtosis = 3 * np.mean(levels ** 4) / np.mean(levels ** 2) ** 2 - 3
  assert facts["excess_kurtosis"] == pytest.approx(kurtosis, rel=0.1)


def test_pooled_facts_average_statistics_and_join_samples_and_the_no_change_reference():
  rng = np.random.default_rng(3)
  streams = [_stream(rng.standard_normal(500)), _stream(2 * rng.standard_normal(300))]
  facts = [stylised_facts(s, 1, LAGS) for s in streams]
  pooled = pooled_facts(facts)
  assert pooled["excess_kurtosis"] == pytest.approx(np.mean([f["excess_kurtosis"]
                                                             for f in facts]))
  np.testing.assert_allclose(pooled["abs_return_acf"],
                             (facts[0]["abs_return_acf"] + facts[1]["abs_return_acf"]) / 2)
  assert len(pooled["returns"]) == 800 and len(pooled["sizes"]) == 800
  mids = streams[0].mids
  window, horizon = 4, 6
  idx = np.arange(window, len(mids) - horizon)
  assert no_change_mae(streams[0], window, horizon) == pytest.approx(
      np.mean(np.abs(mids[idx + horizon] - mids[idx])))


def test_trades_tiny_simulates_markets_and_scores_them(tmp_path):
  from configs.science import trades_lob  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(trades_lob.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  assert record["predictive_no_change"] > 0
  for stream in ("real", "diffusion", "resampled"):
    for key in ("predictive", "kurtosis", "abs_acf", "return_acf", "mean_size"):
      assert np.isfinite(record[f"{key}_{stream}"]), (key, stream)
    assert record[f"predictive_{stream}"] > 0 and record[f"mean_size_{stream}"] >= 1
  assert os.path.exists(os.path.join(workdir, "plots", "stylised_facts_0000010.png"))


@pytest.mark.parametrize("key,value,message", [
    ("model.history", 3, "model.history=3 must equal data.history=4"),
    ("data.num_events", 12, r"data.num_events=12 must exceed data.history \+ eval.window "
                            r"\+ eval.horizon = 14"),
    ("eval.interval", 20, "gives 4 returns of eval.interval=20 events"),
    ("eval.num_paths", 0, "eval.num_paths"),
])
def test_bad_trades_settings_fail_in_one_line_before_the_workdir(tmp_path, key, value,
                                                                  message):
  from configs.science import trades_lob  # pylint: disable=g-import-not-at-top
  config = trades_lob.get_config("tiny")
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")
