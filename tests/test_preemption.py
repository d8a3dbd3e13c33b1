"""Preemption: SIGTERM saves and exits cleanly; SIGKILL at any point loses nothing.

A run killed (SIGKILL) at random moments and resumed by rerunning the same command must
reach bitwise-identical parameters to an uninterrupted run (same seed and config, CPU).
"""
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import experiments
from tests.helpers import REPO, assert_trees_equal, final_state, tiny_config

OVERRIDES = {"train.num_steps": 3000, "train.steps_per_call": 10, "train.log_every": 100,
             "train.eval_every": 0, "train.checkpoint_every": 100}
FLAGS = [f"--config.{k}={v}" for k, v in OVERRIDES.items()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("reference"))
  experiments.run(tiny_config(**OVERRIDES), workdir)
  return final_state(tiny_config(**OVERRIDES), workdir)


def _start(workdir):
  return subprocess.Popen(
      [sys.executable, "-m", "experiments.main", "--config=configs/quickstart.py:tiny",
       f"--workdir={workdir}", *FLAGS], cwd=REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def _checkpoints(workdir):
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def _wait_for_checkpoint(process, workdir, after_step, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    steps = _checkpoints(workdir)
    if steps and steps[-1] > after_step:
      return steps[-1]
    if process.poll() is not None:
      raise AssertionError(f"Run ended early: {process.stderr.read()[-2000:]}")
    time.sleep(0.05)
  raise AssertionError("No new checkpoint appeared.")


def test_sigkill_at_random_points_then_resume_is_bitwise_identical(tmp_path, reference):
  workdir = str(tmp_path / "run")
  rng = random.Random(0)
  last = -1
  for _ in range(2):
    process = _start(workdir)
    last = _wait_for_checkpoint(process, workdir, last)
    time.sleep(rng.uniform(0.0, 0.3))  # Anywhere: mid-step, mid-save, between calls.
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    process.stderr.close()
  finished = _start(workdir)
  _, stderr = finished.communicate(timeout=300)
  assert finished.returncode == 0, stderr[-3000:]
  assert "Resuming from step" in stderr
  state = final_state(tiny_config(**OVERRIDES), workdir)
  assert int(state.step) == OVERRIDES["train.num_steps"]
  assert_trees_equal(reference, state)


def test_sigterm_saves_and_exits_cleanly(tmp_path, reference):
  workdir = str(tmp_path / "run")
  process = _start(workdir)
  _wait_for_checkpoint(process, workdir, -1)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  assert "Stopped at step" in stderr
  stopped_at = int(stderr.split("Stopped at step ")[1].split()[0])
  assert _checkpoints(workdir)[-1] == stopped_at < OVERRIDES["train.num_steps"]
  finished = _start(workdir)
  _, stderr = finished.communicate(timeout=300)
  assert finished.returncode == 0, stderr[-3000:]
  assert f"Resuming from step {stopped_at}" in stderr
  assert_trees_equal(reference, final_state(tiny_config(**OVERRIDES), workdir))
