"""Data parallelism: 8 virtual CPU devices give the single-device result to float tolerance
(replicated or FSDP-sharded parameters, a toy and an image model). The 2-process
jax.distributed runs on localhost are in test_image_experiment.py (host-fed images) and
test_objectstore.py (the quickstart in a bucket)."""
import json
import os
import subprocess
import sys

import jax
import pytest
from jax.sharding import PartitionSpec as P

from diffjax.train import parallel
from tests.helpers import REPO


def test_eight_devices_match_one_device(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  result = subprocess.run([sys.executable, "-m", "tests.data_parallel_script", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["all_reduce"] and report["sharded_devices"] == 8
  # Reductions run in a different order across 8 shards: float32 rounding only.
  assert report["max_abs_diff"] <= 1e-4 * report["param_scale"], report
  assert report["fed_diff"] <= 1e-5, report
  assert report["image_diff"] <= 1e-4 * report["image_scale"], report
  # FSDP-style parameter sharding: the 32 x 32 kernel is stored in 32 x 16 halves and the
  # run equals the replicated one, also after resuming on a different model axis.
  assert report["sharded_spec"] == "P(None, 'model')", report
  assert report["shard_shapes"] == [[32, 16]], report
  assert report["sharded_diff"] <= 1e-4 * report["param_scale"], report
  assert report["resumed_diff"] <= 1e-4 * report["param_scale"], report
  # Evaluation and sampling gather the sharded parameters.
  assert 0 < report["sharded_eval_w2"] < 10 and report["sharded_samples"] > 0, report


def test_param_partition_spec_splits_the_largest_divisible_dimension():
  spec = parallel.param_partition_spec
  assert spec((34, 32), 1) == P()
  assert spec((34, 32), 2) == P("model")            # 34 is the largest and divides by 2
  assert spec((34, 32), 4) == P(None, "model")      # only 32 divides by 4
  assert spec((3, 3, 64, 128), 8) == P(None, None, None, "model")
  assert spec((33, 33), 2) == P()                   # nothing divides
  assert spec((32,), 2) == P()                      # too small to be worth a gather
  assert spec((), 2) == P()


def test_model_axis_size_must_divide_the_device_count():
  with pytest.raises(ValueError, match=r"train.model_axis_size=3 .*valid: \[1\]"):
    parallel.make_data_mesh(jax.devices()[:1], 3)
  mesh = parallel.make_data_mesh(jax.devices()[:1])
  assert mesh.axis_names == ("data", "model") and mesh.devices.shape == (1, 1)
