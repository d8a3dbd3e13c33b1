"""The image experiment end to end: digits, mocked tfds datasets, missing data, two hosts."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import experiments
from diffjax.data import DatasetNotPreparedError
from diffjax.train.workdir import read_metrics
from tests.helpers import REPO, assert_trees_equal


def _tiny(**overrides):
  from configs.images import digits  # pylint: disable=g-import-not-at-top
  config = digits.get_config("tiny")
  for key, value in overrides.items():
    section, name = key.split(".")
    config[section][name] = value
  return config


def test_digits_tiny_trains_evaluates_and_resumes(tmp_path):
  workdir = str(tmp_path / "run")
  state = experiments.run(_tiny(**{"optim.decay_steps": 20}), workdir)
  record = read_metrics(workdir)[-1]
  assert record["step"] == 20
  assert np.isfinite(record["digits_frechet_proxy"]) and record["digits_frechet_proxy"] > 0
  assert 0.0 <= record["digits_class_accuracy"] <= 1.0
  assert 0.0 < record["bits_per_dim"] < 20.0
  assert os.path.exists(os.path.join(workdir, "plots", "samples_0000020.png"))
  # Host-fed batches are a pure function of the step: resuming is bitwise identical.
  half = str(tmp_path / "half")
  experiments.run(_tiny(**{"train.num_steps": 10, "optim.decay_steps": 20}), half)
  resumed = experiments.run(_tiny(**{"optim.decay_steps": 20}), half)
  assert_trees_equal(state.params, resumed.params)
  arrays = experiments.run(_tiny(**{"optim.decay_steps": 20}), workdir, mode="sample")
  assert arrays["samples"].shape == (40, 8, 8, 1) and arrays["labels"].shape == (40,)
  assert arrays["samples"].min() >= -1 and arrays["samples"].max() <= 1


def test_mnist_config_trains_the_unet_on_mocked_tfds(tmp_path):
  from configs.images import tfds_images  # pylint: disable=g-import-not-at-top
  config = tfds_images.get_config("mnist,tiny")
  assert config.model.name == "unet"
  with tfds.testing.mock_data(num_examples=32):
    state = experiments.run(config, str(tmp_path / "run"))
  assert int(state.step) == 4
  record = read_metrics(str(tmp_path / "run"))[-1]
  assert "digits_frechet_proxy" not in record and np.isfinite(record["bits_per_dim"])


def test_cifar10_config_builds_a_cifar_scale_unet_on_mocked_tfds():
  import jax  # pylint: disable=g-import-not-at-top
  from configs.images import tfds_images  # pylint: disable=g-import-not-at-top
  from diffjax.models import build_model  # pylint: disable=g-import-not-at-top
  config = tfds_images.get_config("cifar10")
  with tfds.testing.mock_data(num_examples=32):
    task = experiments.images.build_task(config)
    batch = next(task.data(0))
  assert batch["image"].shape == (128, 32, 32, 3) and batch["image"].dtype == np.float32
  options = {k: v for k, v in config.model.items() if k != "name"}
  model = build_model("unet", (32, 32, 3), **options)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0))
  num_params = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
  assert 30e6 < num_params < 70e6, num_params  # DDPM++ CIFAR-scale (~36M for NCSN++ shape).


def test_missing_dataset_says_how_to_prepare_it(tmp_path):
  config = _tiny(**{"data.name": "cifar10", "data.data_dir": str(tmp_path / "nodata")})
  with pytest.raises(DatasetNotPreparedError, match="tfds build cifar10"):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_two_process_run_trains_a_tiny_image_config(tmp_path):
  """Two jax.distributed processes on localhost, each feeding its share of the host image
  batches: both see all 4 devices, and process 0 alone writes metrics and checkpoints."""
  workdir = str(tmp_path / "run")
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  # Logs go to files: a pipe read after the other process's could fill and block it
  # inside a collective (a deadlock).
  logs = [tmp_path / f"process_{i}.log" for i in range(2)]
  processes = []
  for i, log in enumerate(logs):
    with open(log, "w") as f:
      processes.append(subprocess.Popen(
          [sys.executable, "-m", "experiments.main", "--config=configs/images/digits.py:tiny",
           f"--workdir={workdir}", "--multihost", f"--coordinator_address=localhost:{port}",
           "--num_processes=2", f"--process_id={i}", "--config.eval.bpd_examples=0",
           "--verbosity=1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=f))
  for p in processes:
    p.wait(timeout=900)
  outputs = [log.read_text() for log in logs]
  for p, err in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  for i, err in enumerate(outputs):
    assert f"process {i} of 2, 2 local / 4 global devices" in err
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [20]   # Written once, by process 0.
  assert np.isfinite(records[0]["digits_frechet_proxy"])
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "20"
