"""The guidance demos end to end on their :tiny configs, and bad sample.guidance values
refused before a workdir is touched."""
import os

import numpy as np
import pytest

import experiments
from diffjax.errors import ConfigError
from diffjax.train.workdir import read_metrics


def test_elnino_forecast_tiny_trains_forecasts_and_scores(tmp_path):
  from configs.guidance import elnino_forecast  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(elnino_forecast.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  assert record["step"] == 20 and np.isfinite(record["seasonal_naive_crps"])
  assert 0.5 < record["seasonal_naive_crps"] < 1.5   # °C, last year's value.
  assert os.path.exists(os.path.join(workdir, "plots", "forecasts_0000020.png"))


@pytest.mark.parametrize("key,value,message", [
    ("method", "cfgpp_typo", "Unknown guidance method"),
    ("interval", (0.5, 1.5), "interval"),
    ("num_candidates", 0, "M >= 1"),
])
def test_bad_guidance_values_fail_before_the_workdir(tmp_path, key, value, message):
  from configs.guidance import digits  # pylint: disable=g-import-not-at-top
  config = digits.get_config("tiny")
  config.sample.guidance.method = {"interval": "cfg", "num_candidates": "svdd"}.get(
      key, value)
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
