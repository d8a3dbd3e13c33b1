"""The diagnostics studies end to end on their :tiny configs, and bad values refused
before a workdir is touched."""
import os

import numpy as np
import pytest

import experiments
from configs.diagnostics import hallucination, intrinsic_dimension
from diffjax.registry import UnknownComponentError
from diffjax.train.workdir import read_metrics


def test_hallucination_tiny_reports_the_detector(tmp_path):
  workdir = str(tmp_path / "run")
  experiments.run(hallucination.get_config("2d,tiny"), workdir)
  record = read_metrics(workdir)[-1]
  assert record["step"] == 100 and 0.0 <= record["hallucination_rate"] <= 1.0
  # A 100-step model hallucinates plenty: the detector's rates are reported.
  assert 0.0 <= record["removed"] <= 1.0 and 0.0 <= record["kept"] <= 1.0
  assert 0.0 <= record["removed_window3"] <= 1.0 and 0.0 <= record["kept_window10"] <= 1.0
  # Some samples are in support: their W2 to the mixture is reported beside the floor.
  assert record["w2_points"] > 0 and record["w2_in_support"] > 0 and record["w2_floor"] > 0
  for name in ("detector", "samples"):
    assert os.path.exists(os.path.join(workdir, "plots", f"{name}_0000100.png"))


def test_intrinsic_dimension_tiny_reports_rank_and_asymmetry(tmp_path):
  workdir = str(tmp_path / "run")
  experiments.run(intrinsic_dimension.get_config("sphere,tiny"), workdir)
  record = read_metrics(workdir)[-1]
  assert 0 <= record["dimension_median_0.05"] <= 3
  assert np.isfinite(record["asymmetry_0.05"]) and record["asymmetry_0.05"] > 0
  assert os.path.exists(os.path.join(workdir, "plots", "spectra_0000100.png"))


@pytest.mark.parametrize("config_module,arg,key,value,message", [
    (hallucination, "tiny", "data.means", [], "data.means must be a non-empty list"),
    (hallucination, "tiny", "eval.window", 50, "eval.window=50 must be at most"),
    (hallucination, "tiny", "data.std", 0.0, "data.std"),
    (hallucination, "tiny", "sample.solver", "dopri5", "adaptive"),
    (hallucination, "2d,tiny", "eval.windows", (3, 21), "each window must be an integer in "
                                                        r"\[2, sample.num_steps=20\]; got 21"),
    (intrinsic_dimension, "tiny", "eval.noise_levels", (0.0,), "must be positive"),
    (intrinsic_dimension, "tiny", "path.name", "linear", "Gaussian path"),
    (intrinsic_dimension, "tiny", "data.name", "torus",
     "not one of the valid names: circle, linear_subspace"),
])
def test_bad_values_fail_before_the_workdir(tmp_path, config_module, arg, key, value,
                                            message):
  config = config_module.get_config(arg)
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises((ValueError, UnknownComponentError), match=message):  # ConfigError is one
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
