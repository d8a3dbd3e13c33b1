"""Preemption and kills: SIGTERM stops cleanly at any moment; SIGKILL at any point loses
nothing.

The soak runs one workdir through a SIGKILL during a checkpoint save, a SIGKILL during
training (with a second process refused by the running one's lock, and the killed one's
lock taken over), a SIGTERM, and the damage an interrupted non-atomic write or a full disk
leaves (a torn last line in metrics.jsonl, a torn TensorBoard record, a stray temporary
file), then resumes it to the end: the parameters equal an uninterrupted run's bit for bit
(same seed and config, CPU), and metrics.jsonl and the TensorBoard scalars hold each point
exactly once, equal to the uninterrupted run's.
"""
import dataclasses
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import experiments
from diffjax.train import WorkdirLockedError, preemption, train
from diffjax.train import events as events_lib
from diffjax.train import workdir as workdir_lib
from tests.helpers import (REPO, assert_trees_equal, final_state, regression_config,
                           regression_task, tiny_config)

OVERRIDES = {"train.num_steps": 3000, "train.steps_per_call": 10, "train.log_every": 100,
             "train.eval_every": 1000, "train.checkpoint_every": 100}
FLAGS = [f"--config.{k}={v}" for k, v in OVERRIDES.items()]
COMPARED_TAGS = ("train/loss", "train/grad_norm", "eval/w2", "eval/energy_distance")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run: (final state, its workdir)."""
  workdir = str(tmp_path_factory.mktemp("reference"))
  experiments.run(tiny_config(**OVERRIDES), workdir)
  return final_state(tiny_config(**OVERRIDES), workdir), workdir


class _Run:
  """The command line in a subprocess; stderr goes to a file (read after it ends). The
  runs of a test share a JAX compilation cache, so only the first compiles."""

  def __init__(self, workdir, cache, name):
    self.log = os.path.join(os.path.dirname(workdir), f"{name}.log")
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    with open(self.log, "w") as stderr:
      self.process = subprocess.Popen(
          [sys.executable, "-m", "experiments.main", "--config=configs/quickstart.py:tiny",
           f"--workdir={workdir}", *FLAGS], cwd=REPO, stdout=subprocess.DEVNULL,
          stderr=stderr, env=env)
    self.pid = self.process.pid

  def stderr(self):
    with open(self.log) as f:
      return f.read()

  def wait_until(self, condition, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
      if condition():
        return
      if self.process.poll() is not None:
        raise AssertionError(f"The run ended early: {self.stderr()[-3000:]}")
      time.sleep(0.005)
    raise AssertionError("Timed out.")

  def signal(self, signum):
    self.process.send_signal(signum)
    return self.process.wait(timeout=300)


def _checkpoints(workdir):
  directory = os.path.join(workdir, "checkpoints")
  names = os.listdir(directory) if os.path.isdir(directory) else []
  return sorted(int(d) for d in names if d.isdigit())


def _saving(workdir):
  """Orbax writes a checkpoint into a temporary directory, renamed when complete."""
  directory = os.path.join(workdir, "checkpoints")
  return os.path.isdir(directory) and any("tmp" in d for d in os.listdir(directory))


def _new_checkpoint(workdir, after):
  return lambda: bool(_checkpoints(workdir)) and _checkpoints(workdir)[-1] > after


def _points(workdir):
  found = events_lib.scalars(os.path.join(workdir, "events"))
  return {tag: found.get(tag, []) for tag in COMPARED_TAGS}


def test_soak_kills_sigterm_and_damage_resume_to_the_uninterrupted_run(tmp_path, reference):
  reference_state, reference_dir = reference
  workdir, cache = str(tmp_path / "run"), str(tmp_path / "jax_cache")
  rng = random.Random(0)

  # SIGKILL during a checkpoint save: orbax's temporary directory is left behind.
  for attempt in range(3):
    killed = _Run(workdir, cache, f"save{attempt}")
    killed.wait_until(lambda: _saving(workdir))
    assert killed.signal(signal.SIGKILL) == -signal.SIGKILL
    if _saving(workdir):
      break
  assert _saving(workdir), "no kill landed inside a save"

  # SIGKILL during training, after a new checkpoint; meanwhile the workdir is locked.
  training = _Run(workdir, cache, "train")
  training.wait_until(_new_checkpoint(workdir, max(_checkpoints(workdir), default=-1)))
  with pytest.raises(WorkdirLockedError, match=f"in use by process {training.pid} on host"):
    workdir_lib.WorkdirLock(workdir, "train").acquire()
  time.sleep(rng.uniform(0.0, 0.05))
  assert training.signal(signal.SIGKILL) == -signal.SIGKILL
  assert f"Took over the lock of process {killed.pid}" in training.stderr()

  # SIGTERM: a checkpoint at the step reached, exit code 0.
  stopped = _Run(workdir, cache, "sigterm")
  stopped.wait_until(_new_checkpoint(workdir, _checkpoints(workdir)[-1]))
  assert stopped.signal(signal.SIGTERM) == 0, stopped.stderr()[-3000:]
  stopped_at = int(stopped.stderr().split("Stopped at step ")[1].split()[0])
  assert _checkpoints(workdir)[-1] == stopped_at < OVERRIDES["train.num_steps"]

  # What an interrupted non-atomic write leaves.
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 2900, "w2": 0.')
  with open(events_lib.event_files(os.path.join(workdir, "events"))[-1], "ab") as f:
    f.write(b"\x20\x00\x00\x00\x00\x00\x00\x00\x99")
  with open(os.path.join(workdir, ".diffjax-interrupted.tmp"), "w") as f:
    f.write("half")

  finished = _Run(workdir, cache, "final")
  assert finished.process.wait(timeout=600) == 0, finished.stderr()[-3000:]
  log = finished.stderr()
  assert f"Resuming from step {stopped_at} of 3000" in log
  assert "Dropping the incomplete last line" in log and "Traceback" not in log
  assert not os.path.exists(os.path.join(workdir, ".diffjax-interrupted.tmp"))
  state = final_state(tiny_config(**OVERRIDES), workdir)
  assert int(state.step) == OVERRIDES["train.num_steps"]
  assert_trees_equal(reference_state, state)
  assert workdir_lib.read_metrics(workdir) == workdir_lib.read_metrics(reference_dir)
  assert [r["step"] for r in workdir_lib.read_metrics(workdir)] == [1000, 2000, 3000]
  points, expected = _points(workdir), _points(reference_dir)
  assert [s for s, _ in expected["train/loss"]] == list(range(100, 3001, 100))
  for tag in COMPARED_TAGS:  # Each point once, with the uninterrupted run's value.
    assert sorted(points[tag]) == sorted(expected[tag]), tag
    assert len({s for s, _ in points[tag]}) == len(points[tag]), tag


def test_sigterm_while_starting_exits_cleanly_and_writes_nothing(tmp_path):
  workdir = str(tmp_path / "run")
  run = _Run(workdir, str(tmp_path / "jax_cache"), "start")
  time.sleep(1.0)  # Importing (several seconds): nothing written yet.
  assert run.signal(signal.SIGTERM) == 0, run.stderr()[-3000:]
  assert "Stopped on request (signal 15)" in run.stderr()
  assert "Traceback" not in run.stderr()
  assert not os.path.exists(workdir)


def _signalling(fn):
  """fn, sending this process SIGTERM the first time it runs (or is traced)."""
  sent = []
  def wrapped(*args):
    if not sent:
      sent.append(True)
      os.kill(os.getpid(), signal.SIGTERM)
    return fn(*args)
  return wrapped


class _Exited(Exception):
  pass


def test_sigterm_before_training_exits_before_the_workdir_is_touched(tmp_path,
                                                                     monkeypatch):
  def exit_now(message):  # In place of os._exit(0).
    raise _Exited(message)
  monkeypatch.setattr(preemption, "_exit_now", exit_now)
  task = regression_task()
  task = dataclasses.replace(task, init_params=_signalling(task.init_params))
  previous = preemption.install()  # As the command line does.
  try:
    with pytest.raises(_Exited, match=r"Stopped on request \(signal 15\) before training "
                                      "started"):
      train(regression_config(), str(tmp_path / "run"), task)
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert not (tmp_path / "run").exists()


def test_sigterm_during_the_first_call_saves_after_it(tmp_path):
  task = regression_task()
  task = dataclasses.replace(task, loss=_signalling(task.loss))  # Traced in the 1st call.
  state = train(regression_config(), str(tmp_path), task)
  assert int(state.step) == 10
  assert _checkpoints(str(tmp_path)) == [10]
  assert np.all(np.isfinite(np.asarray(state.params["w"])))


def test_sigterm_after_the_checkpoints_are_opened_stops_without_training(tmp_path):
  task = regression_task()
  task = dataclasses.replace(task, data=_signalling(task.data))  # Called before the loop.
  state = train(regression_config(), str(tmp_path), task)
  assert int(state.step) == 0
  assert _checkpoints(str(tmp_path)) == []
