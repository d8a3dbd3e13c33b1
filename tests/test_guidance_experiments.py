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


def test_elucd_inpainting_and_noisy_classifier_tiny_guide_the_digits(tmp_path):
  """digits_elucd:tiny trains the digits DiT (20 steps) and evaluates EluCD at one scale;
  digits_inpainting:tiny evaluates the same run (DPS, 2 draws per digit);
  digits_noisy_classifier:tiny trains the noise-aware classifier (10 steps) and guides
  that run with it. Accuracies are fractions of 20 samples (untrained models: only their
  range is asserted)."""
  # pylint: disable-next=g-import-not-at-top
  from configs.guidance import digits_elucd, digits_inpainting, digits_noisy_classifier
  diffusion = str(tmp_path / "digits")
  experiments.run(digits_elucd.get_config("tiny"), diffusion)
  record = read_metrics(diffusion)[-1]
  assert 0.0 <= record["accuracy_elucd_s2"] <= 1.0
  assert 0.0 <= record["nn_accuracy_elucd_s2"] <= 1.0
  assert os.path.exists(os.path.join(diffusion, "plots", "elucd_s2_0000020.png"))
  config = digits_inpainting.get_config("tiny")
  config.eval.inpainting_draws = 2
  experiments.run(config, diffusion, mode="eval")
  record = read_metrics(diffusion)[-1]
  assert 8 < record["nearest_neighbour_psnr"] < 20   # dB; untrained DPS: only finite.
  assert np.isfinite(record["inpainting_psnr_mean_of_draws"])
  config = digits_noisy_classifier.get_config("tiny")
  config.eval.update(diffusion_workdir=diffusion, guidance_scales=(1.0,))
  workdir = str(tmp_path / "classifier")
  experiments.run(config, workdir)
  record = read_metrics(workdir)[-1]
  assert record["step"] == 10 and 0.0 <= record["noisy_accuracy_t1"] <= 1.0
  assert 0.0 <= record["accuracy_classifier_s1"] <= 1.0
  config.path.name = "vp"
  with pytest.raises(ConfigError, match="must be the same path"):
    experiments.run(config, str(tmp_path / "other"))


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
