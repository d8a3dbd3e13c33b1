"""Data parallelism: 8 virtual CPU devices give the single-device result to float tolerance
(replicated or FSDP-sharded parameters, a toy and an image model); a 2-process
jax.distributed run on localhost trains the quickstart."""
import json
import os
import socket
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


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_process_distributed_run_trains_the_quickstart(tmp_path):
  workdir = str(tmp_path / "run")
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  # Logs go to files: a pipe read after the other process's could fill and block it
  # inside a collective (a deadlock).
  logs = [tmp_path / f"process_{i}.log" for i in range(2)]
  processes = []
  for i, log in enumerate(logs):
    with open(log, "w") as f:
      processes.append(subprocess.Popen(
          [sys.executable, "-m", "experiments.main", "--config=configs/quickstart.py:tiny",
           f"--workdir={workdir}", "--multihost", f"--coordinator_address=localhost:{port}",
           "--num_processes=2", f"--process_id={i}", "--verbosity=1"],
          cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=f, text=True))
  for p in processes:
    p.wait(timeout=600)
  outputs = [log.read_text() for log in logs]
  for p, err in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  assert "process 0 of 2, 2 local / 4 global devices" in outputs[0]
  assert "process 1 of 2, 2 local / 4 global devices" in outputs[1]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [100, 200]  # Written once, by process 0.
  assert records[-1]["w2"] < 1.5  # Trained: an untrained flow is far off (W2 > 2).
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "200"


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
