"""The SeisFusion and SEEDS experiments end to end on their :tiny configs, and bad input
refused in one line before the workdir is touched."""
import os

import numpy as np
import pytest

import experiments
from diffjax.errors import ConfigError
from diffjax.science import pooled_snr_db
from diffjax.train.workdir import read_metrics


def test_pooled_snr_against_its_closed_form():
  truth = np.stack([np.arange(8.0)[:, None] * np.ones((1, 4)), np.ones((8, 4))])
  energy = np.sum((truth[0] - truth[0].mean()) ** 2)      # The second has no signal.
  error = np.zeros_like(truth)
  error[1, 0, 0] = np.sqrt(energy / 100)                   # Total error energy / 100.
  assert pooled_snr_db(truth, truth + error) == pytest.approx(20.0)
  assert np.isfinite(pooled_snr_db(truth, truth))


def test_seisfusion_tiny_keeps_recorded_traces_and_scores(tmp_path):
  from configs.science import seisfusion  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(seisfusion.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  for p in ("30", "50", "70"):
    assert record[f"known_change_{p}"] == 0.0
    for estimate in ("diffusion", "diffusion_mean", "linear", "nearest"):
      assert np.isfinite(record[f"snr_{estimate}_{p}"])
  assert os.path.exists(os.path.join(workdir, "plots", "section_0000010.png"))


@pytest.mark.parametrize("mask,message", [
    (np.ones((8, 5)), r"has shape \(8, 5\); traces of volumes \(8, 4, 8\) need a mask of "
                      r"shape \(8, 4\)"),
    (np.full((8, 4), 0.5), "only 0 \\(missing\\) and 1"),
])
def test_bad_trace_masks_fail_in_one_line_before_the_workdir(tmp_path, mask, message):
  from configs.science import seisfusion  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "mask.npz")
  np.savez(path, mask=mask)
  config = seisfusion.get_config("tiny")
  config.data.mask_file = path
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("residual", [False, True])
def test_seeds_tiny_scores_its_ensembles(tmp_path, residual):
  from configs.science import seeds_lorenz96  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  config = seeds_lorenz96.get_config("tiny")
  config.data.residual = residual
  experiments.run(config, workdir)
  record = read_metrics(workdir)[-1]
  names = ("seeds", "seeds_generated", "true") + (() if residual else ("unconditional",))
  for name in names:
    assert record[f"crps_{name}"] > 0 and np.isfinite(record[f"spread_skill_{name}"])
  assert os.path.exists(os.path.join(workdir, "plots", "rank_histograms_0000010.png"))


@pytest.mark.parametrize("key,value,message", [
    ("data.num_seeds", 5, "data.num_seeds=5 must be below data.members=5"),
    ("eval.generated", 4, "exceeds data.members=5"),
    ("data.lead_time", 0.0, "data.lead_time"),
])
def test_bad_seeds_values_fail_before_the_workdir(tmp_path, key, value, message):
  from configs.science import seeds_lorenz96  # pylint: disable=g-import-not-at-top
  config = seeds_lorenz96.get_config("tiny")
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ConfigError, match=message):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_padts_tiny_scores_both_shifts(tmp_path):
  from configs.science import padts_var  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(padts_var.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  for key in ("correlation_shift", "value_shift", "correlation_shift_floor",
              "value_shift_floor"):
    assert np.isfinite(record[key]) and record[key] >= 0.0, key
  assert padts_var.get_config("plain").population.weight == 0.0


def test_padts_refuses_one_channel_before_the_workdir(tmp_path):
  from configs.science import padts_var  # pylint: disable=g-import-not-at-top
  config = padts_var.get_config("tiny")
  config.data.channels = 1
  with pytest.raises(ConfigError, match="data.channels=1"):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
