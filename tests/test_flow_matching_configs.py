"""Every flow-matching variant is a config that trains through experiments.run (tiny)."""
import importlib
import json
import os

import jax
import numpy as np
import pytest

import experiments

VARIANTS = ["icfm", "otcfm", "sbcfm", "sf2m", "vpcfm", "fm", "stochastic_interpolant"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_trains_on_tiny_setting(name, tmp_path):
  module = importlib.import_module(f"configs.flow_matching_2d.{name}")
  assert f"configs/flow_matching_2d/{name}.py" in module.__doc__   # Its command line.
  config = module.get_config("tiny")
  state = experiments.run(config, str(tmp_path))
  assert int(state.step) == config.train.num_steps
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  w2 = [r["w2"] for r in records if "w2" in r]
  assert w2 and np.isfinite(w2[-1]) and w2[-1] > 0
  leaves = jax.tree.leaves(state.params)
  assert leaves and all(np.all(np.isfinite(np.asarray(p))) for p in leaves)


def test_unknown_arg_is_refused():
  with pytest.raises(ValueError, match="tiny"):
    importlib.import_module("configs.flow_matching_2d.icfm").get_config("huge")
