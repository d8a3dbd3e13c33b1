"""The graphs family end to end on the engine (configs/graphs/community_small.py:tiny):
training of both score networks, the coupled PC sampler through `integrate`, the MMD table
over seeds beside GDSS's reported row and the Erdős–Rényi baseline; bad configs fail
before the workdir is written."""
import os

import pytest

import experiments
from configs.graphs import community_small
from diffjax.errors import ConfigError
from diffjax.graphs import GDSS_COMMUNITY_SMALL
from diffjax.train.workdir import read_metrics

STATISTICS = ("degree", "clustering", "orbit")


def test_community_small_tiny_trains_and_writes_the_mmd_table(tmp_path):
  workdir = str(tmp_path / "run")
  config = community_small.get_config("tiny")
  state = experiments.run(config, workdir)
  assert int(state.step) == 4
  record = read_metrics(workdir)[-1]
  # nfe: 5 steps of one corrector and one predictor evaluation of both networks.
  assert record["nfe"] == 10 and record["num_seeds"] == 2
  for prefix in ("", "erdos_renyi_", "train_vs_test_"):
    for name in STATISTICS:
      # A squared MMD with a characteristic kernel is >= 0 up to float error; the kernels
      # are <= 1, so it is at most 2.
      assert -1e-9 <= record[prefix + name] <= 2.0
      assert record[f"{prefix}{name}_std"] >= 0.0
  assert 0 < record["erdos_renyi_p"] < 1
  for name in ("graphs", "mmd_table"):
    assert os.path.exists(os.path.join(workdir, "plots", f"{name}_0000004.png"))
  assert GDSS_COMMUNITY_SMALL == {"degree": 0.045, "clustering": 0.086, "orbit": 0.007}


@pytest.mark.parametrize("overrides, message", [
    ({"data": {"max_nodes": 16}}, r"has (18|20) nodes, more than the configured maximum "
                                  r"data.max_nodes=16"),
    ({"data": {"num_features": 4}}, r"data.num_features >= \d+"),
    ({"train": {"batch_size": 64}}, "train.batch_size=64 exceeds the 16 training graphs"),
    ({"eval": {"num_seeds": 0}}, "eval.num_seeds"),
    ({"sample": {"threshold": 1.0}}, "sample.threshold"),
    ({"model": {"adj": {"num_heads": 3}}}, "attention_dim=8 must split evenly over "
                                           "model.adj.num_heads=3"),
])
def test_bad_configs_fail_before_the_workdir_is_written(tmp_path, overrides, message):
  config = community_small.get_config("tiny")
  config.update_from_flattened_dict(
      {f"{section}.{key}": value for section, values in overrides.items()
       for key, value in _flatten(values).items()})
  workdir = str(tmp_path / "run")
  with pytest.raises(ConfigError, match=message):
    experiments.run(config, workdir)
  assert not os.path.exists(workdir)


def _flatten(values, prefix=""):
  out = {}
  for key, value in values.items():
    if isinstance(value, dict):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = value
  return out
