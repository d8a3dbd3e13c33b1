"""The training engine in-process: resumption, chunking, NaN handling, checkpoint damage."""
import dataclasses
import json
import os

import jax
import numpy as np
import pytest

import jax.numpy as jnp

import experiments
from diffjax.train import (CheckpointError, IncompatibleWorkdirError, NonFiniteLossError,
                           Task, WorkdirError, restore_for_inference, train)
from diffjax import metrics, plotting
from diffjax.train.defaults import engine_config
from diffjax.train import events as events_lib
from diffjax.train import workdir as workdir_lib
from tests.helpers import (assert_trees_equal, final_state, regression_config,
                           regression_task, tiny_config)


def _params(state):
  return jax.tree.map(np.asarray, state.params)


def test_steps_per_call_does_not_change_the_result(tmp_path):
  """lax.scan over k steps per call is the same computation as k calls of one step."""
  one = experiments.run(tiny_config(**{"train.steps_per_call": 1, "train.num_steps": 60,
                                       "train.eval_every": 0}), str(tmp_path / "a"))
  many = experiments.run(tiny_config(**{"train.steps_per_call": 30, "train.num_steps": 60,
                                        "train.eval_every": 0}), str(tmp_path / "b"))
  assert int(one.step) == int(many.step) == 60
  assert_trees_equal(_params(one), _params(many))


def test_resume_continues_bitwise(tmp_path):
  """Training 200 steps equals training 100, stopping, and extending the run to 200 (with
  the schedule's length fixed by optim.decay_steps)."""
  fixed = {"optim.decay_steps": 200}
  full = experiments.run(tiny_config(**fixed), str(tmp_path / "full"))
  half_dir = str(tmp_path / "half")
  experiments.run(tiny_config(**fixed, **{"train.num_steps": 100}), half_dir)
  assert workdir_lib.read_metrics(half_dir)[-1]["step"] == 100
  resumed = experiments.run(tiny_config(**fixed), half_dir)
  assert_trees_equal(_params(full), _params(resumed))
  assert_trees_equal(jax.tree.map(np.asarray, full.ema_params),
                     jax.tree.map(np.asarray, resumed.ema_params))
  steps = [r["step"] for r in workdir_lib.read_metrics(half_dir)]
  assert steps == [100, 200]


def test_workdir_is_self_describing(tmp_path):
  workdir = str(tmp_path / "run")
  config = tiny_config()
  experiments.run(config, workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["train"]["num_steps"] == config.train.num_steps
  records = workdir_lib.read_metrics(workdir)
  assert [r["step"] for r in records] == [100, 200]
  assert all(np.isfinite(r["w2"]) and r["w2"] > 0 for r in records)
  plots = sorted(os.listdir(os.path.join(workdir, "plots")))
  assert "samples_0000200.png" in plots and "trajectories_0000200.png" in plots
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(os.path.join(workdir, "events")))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "200"


def _snapshot(directory):
  """{relative path: bytes} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


def test_eval_and_sample_modes(tmp_path):
  """Eval adds a record marked "mode": "eval" and its own figures; sample writes into
  samples/; neither changes checkpoints, TensorBoard events or the training run's plots."""
  workdir = str(tmp_path / "run")
  config = tiny_config()
  experiments.run(config, workdir)
  before = _snapshot(workdir)
  values = experiments.run(config, workdir, mode="eval")
  records = workdir_lib.read_metrics(workdir)
  assert [(r["step"], r.get("mode")) for r in records] == [(100, None), (200, None),
                                                           (200, "eval")]
  assert values["w2"] == pytest.approx(records[-2]["w2"])  # Same checkpoint, same key.
  arrays = experiments.run(config, workdir, mode="sample")
  with np.load(os.path.join(workdir, "samples", "samples_0000200.npz")) as saved:
    np.testing.assert_array_equal(saved["samples"], arrays["samples"])
    assert saved["samples"].shape == (config.eval.num_samples, 2)
    assert saved["trajectories"].shape[0] == config.sample.num_steps + 1
  after = _snapshot(workdir)
  changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
  assert changed == {"metrics.jsonl", "plots/samples_0000200_eval.png",
                     "plots/trajectories_0000200_eval.png", "samples/samples_0000200.npz",
                     "samples/samples_0000200.png", "samples/trajectories_0000200.png"}


@pytest.mark.parametrize("mode", ["eval", "sample"])
def test_eval_and_sample_without_checkpoint_are_refused_and_create_nothing(tmp_path, mode):
  workdir = tmp_path / "empty"
  with pytest.raises(WorkdirError, match=f"--mode={mode}: --workdir=.* does not exist"):
    experiments.run(tiny_config(), str(workdir), mode=mode)
  assert not workdir.exists()
  workdir.mkdir()
  with pytest.raises(WorkdirError, match=f"--mode={mode}: no checkpoint in .*train first"):
    experiments.run(tiny_config(), str(workdir), mode=mode)
  assert not list(workdir.iterdir())


def test_incompatible_workdir_is_refused_unless_overwritten(tmp_path):
  workdir = str(tmp_path / "run")
  experiments.run(tiny_config(**{"train.num_steps": 50, "train.eval_every": 0}), workdir)
  with pytest.raises(IncompatibleWorkdirError, match=r"model.width: 32 \(recorded\) vs 48"):
    experiments.run(tiny_config(**{"model.width": 48}), workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["50"]
  state = experiments.run(tiny_config(**{"model.width": 48, "train.num_steps": 50,
                                         "train.eval_every": 0}), workdir, overwrite=True)
  assert jax.tree.leaves(state.params)[0].shape[-1] == 48
  # Changing only step counts or evaluation settings resumes instead.
  state = experiments.run(tiny_config(**{"model.width": 48, "train.num_steps": 100,
                                         "eval.num_samples": 128}), workdir)
  assert int(state.step) == 100


def _diverging_task():
  """w grows by exactly lr per Adam step (constant gradient); the loss is NaN once
  w > 10.05, i.e. from step 101 with lr = 0.1."""
  def loss(params, key, shard, step):
    del key, shard, step
    w = params["w"]
    return -w + 0.0 * jnp.log(10.05 - w), {}
  return Task(init_params=lambda key: {"w": jnp.zeros(())}, loss=loss,
              evaluate=lambda params, key: ({}, {}), sample=None, batch_size=1)


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  config = engine_config()
  config.train.update(num_steps=300, steps_per_call=10, log_every=50, eval_every=0,
                      checkpoint_every=50)
  config.optim.update(learning_rate=0.1, schedule="constant", warmup_steps=0,
                      grad_clip=0.0)
  workdir = str(tmp_path / "run")
  task = _diverging_task()
  with pytest.raises(NonFiniteLossError, match=r"At step 101 the loss became nan.*step 100"):
    train(config, workdir, task)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["100", "50"]
  state = restore_for_inference(config, workdir, task)
  assert int(state.step) == 100
  np.testing.assert_allclose(float(state.params["w"]), 10.0, rtol=1e-4)
  config.train.update(checkpoint_every=0)
  with pytest.raises(NonFiniteLossError, match=r"At step 101 the loss became nan; stopping "
                     r"without saving\. No checkpoint was saved yet, so a rerun starts from "
                     r"scratch, with this config or a corrected one\."):
    train(config, str(tmp_path / "never_saved"), task)


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, capfd, caplog):
  workdir = str(tmp_path / "run")
  config = tiny_config(**{"train.num_steps": 100, "train.eval_every": 0,
                          "train.checkpoint_every": 50})
  experiments.run(config, workdir)
  latest = os.path.join(workdir, "checkpoints", "100")
  for root, _, files in os.walk(latest):  # Truncate every data file of step 100.
    for name in files:
      with open(os.path.join(root, name), "wb"):
        pass
  checkpoints = _snapshot(os.path.join(workdir, "checkpoints"))
  state = final_state(config, workdir)  # Reading (eval, sample) skips it, moves nothing.
  assert int(state.step) == 50
  experiments.run(config, workdir, mode="eval")
  assert _snapshot(os.path.join(workdir, "checkpoints")) == checkpoints
  assert not os.path.exists(os.path.join(workdir, "broken_checkpoints"))
  assert [(r["step"], r.get("mode")) for r in workdir_lib.read_metrics(workdir)] == [
      (50, "eval"), (100, None)]  # Step order, though evaluated after step 100's record.
  # Training moves it aside, resumes from step 50 and reaches a clean run's parameters.
  resumed = experiments.run(config, workdir)
  assert os.path.isdir(os.path.join(workdir, "broken_checkpoints", "100"))
  reasons = [r.getMessage() for r in caplog.records if "failed to restore" in r.getMessage()]
  assert reasons and not [r for r in reasons if "pybind11" in r or "bound method" in r]
  output = capfd.readouterr().err
  assert "Exception ignored" not in output and "Event loop is closed" not in output
  clean = experiments.run(config, str(tmp_path / "clean"))
  assert_trees_equal(_params(resumed), _params(clean))


def test_all_checkpoints_damaged_is_an_error(tmp_path):
  workdir = str(tmp_path / "run")
  config = tiny_config(**{"train.num_steps": 50, "train.eval_every": 0})
  experiments.run(config, workdir)
  for root, _, files in os.walk(os.path.join(workdir, "checkpoints")):
    for name in files:
      with open(os.path.join(root, name), "wb"):
        pass
  with pytest.raises(CheckpointError, match="could be restored"):
    final_state(config, workdir)


def _nan_sample_task():
  """Finite parameters whose 'samples' are not finite: evaluation reports NaN metrics and
  still draws its figure (the finite reference only)."""
  reference = np.random.default_rng(0).normal(size=(64, 2))

  def evaluate(params, key):
    del key
    samples = np.full((64, 2), np.inf) * float(np.asarray(params["w"]).sum() + 1)
    return (metrics.compute_metrics(["w2", "energy_distance"], samples, reference),
            {"samples": plotting.scatter_figure(samples, reference, "diverged")})
  return dataclasses.replace(regression_task(), evaluate=evaluate)


def test_non_finite_samples_do_not_crash_evaluation(tmp_path, caplog):
  """NaN metrics are written as JSON null (never a bare NaN token), with a warning."""
  workdir = str(tmp_path)
  caplog.set_level("WARNING")
  train(regression_config(), workdir, _nan_sample_task())
  records = workdir_lib.read_metrics(workdir)
  assert [r["step"] for r in records] == [40]
  assert records[0]["w2"] is None and records[0]["energy_distance"] is None
  assert np.isnan(workdir_lib.read_metrics(workdir, null_as_nan=True)[0]["w2"])
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    text = f.read()
  assert "NaN" not in text and "Infinity" not in text
  json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in metrics.jsonl"))
  assert "w2, energy_distance not finite (written as null" in caplog.text
  assert os.listdir(os.path.join(workdir, "plots")) == ["samples_0000040.png"]


def test_a_missing_evaluation_is_run_on_resume_once(tmp_path, caplog):
  """A run stopped between a checkpoint and its evaluation (a kill, or an evaluation that
  failed) evaluates that step when rerun; TensorBoard keeps one point per step."""
  workdir = str(tmp_path)
  config = regression_config(eval_every=20)
  train(config, workdir, regression_task())
  complete = workdir_lib.read_metrics(workdir)
  workdir_lib._write_metrics(workdir, complete[:-1])  # pylint: disable=protected-access
  caplog.set_level("INFO")
  train(config, workdir, regression_task())
  assert "The evaluation at step 40 is missing" in caplog.text
  assert "is complete" in caplog.text
  assert workdir_lib.read_metrics(workdir) == complete
  points = events_lib.scalars(os.path.join(workdir, "events"))["eval/w_error"]
  assert [s for s, _ in points] == [20, 40]
