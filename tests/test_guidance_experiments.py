"""The guidance demos end to end on their :tiny configs, and bad sample.guidance values
refused before a workdir is touched."""
import os

import numpy as np
import pytest

import experiments
from diffjax.errors import ConfigError
from diffjax.runs import RunError
from diffjax.train.workdir import read_metrics


def test_elnino_forecast_tiny_trains_forecasts_and_scores(tmp_path):
  from configs.guidance import elnino_forecast  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(elnino_forecast.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  assert record["step"] == 20 and np.isfinite(record["seasonal_naive_crps"])
  assert 0.5 < record["seasonal_naive_crps"] < 1.5   # °C, last year's value.
  for key in ("linear_crps", "refined_langevin_seasonal_naive_crps",
              "prior_only_langevin_linear_crps",
              "refined_most_likely_linear_crps", "tstr_mae", "trtr_mae", "tstr_ratio"):
    assert np.isfinite(record[key]) and record[key] > 0, key
  assert os.path.exists(os.path.join(workdir, "plots", "forecasts_0000020.png"))


@pytest.mark.parametrize("rows,overrides,message", [
    ("1\n2\nnan\n" + "4\n" * 60, {}, r"NaN or infinite value at index \(2, 0\)"),
    ("1,2\n" * 60, {}, "has 2 channels"),
    ("1\n" * 30, {}, "longer than the training stretch of the series"),
    ("1\n" * 80, {"data.train_fraction": 1.5}, "data.train_fraction=1.5"),
])
def test_bad_series_files_fail_in_one_line_before_the_workdir(tmp_path, rows, overrides,
                                                               message):
  from configs.guidance import elnino_forecast  # pylint: disable=g-import-not-at-top
  path = tmp_path / "series.csv"
  path.write_text(rows)
  config = elnino_forecast.get_config("tiny")
  config.data.name, config.data.file = "file", str(path)
  for key, value in overrides.items():
    section, name = key.split(".")
    config[section][name] = value
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")


def test_noisy_classifier_tiny_trains_and_scores(tmp_path):
  """digits_noisy_classifier:tiny trains the noise-aware classifier (10 steps) through the
  engine and scores it on noisy held-out digits (an untrained classifier: only the range of
  the accuracy is asserted); a diffusion workdir without a run is refused before the
  classifier's workdir is touched. (The digits DiT's own tiny runs, EluCD and inpainting
  studies, cost ~35 s of CPU to train and compile and run only in their demos.)"""
  # pylint: disable-next=g-import-not-at-top
  from configs.guidance import digits_noisy_classifier
  config = digits_noisy_classifier.get_config("tiny")
  workdir = str(tmp_path / "classifier")
  experiments.run(config, workdir)
  record = read_metrics(workdir)[-1]
  assert record["step"] == 10 and 0.0 <= record["noisy_accuracy_t1"] <= 1.0
  assert 0.0 <= record["noisy_accuracy_t0.5"] <= 1.0
  config.eval.diffusion_workdir = str(tmp_path / "missing")
  with pytest.raises(RunError, match="no run to load"):
    experiments.run(config, str(tmp_path / "other"))
  assert not os.path.exists(tmp_path / "other")


@pytest.mark.parametrize("key,value,message", [
    ("method", "cfgpp_typo", "Unknown guidance method"),
    ("interval", (0.5, 1.5), "interval"),
    ("num_candidates", 0, "M >= 1"),
    ("on", "pixels", "'state' or on the 'data'"),
    ("through", "classifier", "'denoiser' or at the 'estimate'"),
])
def test_bad_guidance_values_fail_before_the_workdir(tmp_path, key, value, message):
  from configs.guidance import digits  # pylint: disable=g-import-not-at-top
  config = digits.get_config("tiny")
  config.sample.guidance.method = {"interval": "cfg", "num_candidates": "svdd", "on": "dps",
                                    "through": "elucd"}.get(key, value)
  if key != "method":
    config.sample.guidance[key] = value
  with pytest.raises((ConfigError, Exception), match=message):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_cfg_needs_a_conditional_run(tmp_path):
  from configs.guidance import elnino_forecast  # pylint: disable=g-import-not-at-top
  config = elnino_forecast.get_config("tiny")
  config.sample.guidance.method = "cfg"
  with pytest.raises(ConfigError, match="unconditional"):
    experiments.run(config, str(tmp_path / "run"))
