"""A run's files under damage and misuse: the workdir lock, metrics.jsonl, TensorBoard
events, figures and metrics of non-finite samples, progress lines (fast, no training)."""
import io
import json
import os
import socket
import stat

import jax
import matplotlib.image
import numpy as np
import pytest
from absl import logging
from tensorboardX.proto import summary_pb2

from diffjax import metrics, plotting
from diffjax.data import get_sampler
from diffjax.train import events as events_lib
from diffjax.train import workdir as workdir_lib
from diffjax.train.writer import Progress, RunWriter, figure_to_png
from tests.helpers import tiny_config


# --- The workdir lock. ---

def test_lock_refuses_a_second_holder_naming_pid_host_and_mode(tmp_path):
  with workdir_lib.WorkdirLock(str(tmp_path), "train"):
    with open(tmp_path / "lock") as f:
      holder = json.load(f)
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(workdir_lib.WorkdirLockedError,
                       match=rf"in use by process {os.getpid()} on host "
                             rf"{socket.gethostname()} \(--mode=train, since "):
      workdir_lib.WorkdirLock(str(tmp_path), "eval").acquire()
  assert not (tmp_path / "lock").exists()  # Released with its holder.
  with workdir_lib.WorkdirLock(str(tmp_path), "eval"):  # Free again.
    pass


def test_stale_lock_of_an_ended_process_is_taken_over(tmp_path, monkeypatch):
  """A killed holder leaves its lock file, but the kernel has dropped its lock."""
  (tmp_path / "lock").write_text(json.dumps({"pid": 99999999, "host": "elsewhere",
                                             "mode": "train", "started": "then"}))
  messages = []
  monkeypatch.setattr(logging, "info", lambda fmt, *args: messages.append(fmt % args))
  with workdir_lib.WorkdirLock(str(tmp_path), "train"):
    with open(tmp_path / "lock") as f:
      assert json.load(f)["pid"] == os.getpid()
  assert any("Took over the lock of process 99999999 on host elsewhere" in m
             for m in messages)


# --- metrics.jsonl. ---

def test_torn_last_metrics_line_is_dropped_and_repaired(tmp_path):
  workdir = str(tmp_path)
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 100, "w2": 0.5}\n{"step": 200, "w2": 0.4}\n{"step": 30')
  assert [r["step"] for r in workdir_lib.read_metrics(workdir)] == [100, 200]
  workdir_lib.truncate_metrics(workdir, 200)
  assert path.read_text() == '{"step": 100, "w2": 0.5}\n{"step": 200, "w2": 0.4}\n'
  workdir_lib.truncate_metrics(workdir, 100)  # Records after a resumed step go.
  assert path.read_text() == '{"step": 100, "w2": 0.5}\n'


def test_damaged_metrics_line_before_the_last_is_an_error(tmp_path):
  (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
  with pytest.raises(workdir_lib.MetricsFileError, match="metrics.jsonl line 2"):
    workdir_lib.read_metrics(str(tmp_path))


def test_metrics_records_stay_in_step_order_and_files_are_0644(tmp_path):
  workdir = str(tmp_path)
  for step in (100, 300, 200, 300, 50):
    workdir_lib.add_metrics_record(workdir, {"step": step, "order": len(
        workdir_lib.read_metrics(workdir))})
  records = workdir_lib.read_metrics(workdir)
  assert [(r["step"], r["order"]) for r in records] == [(50, 4), (100, 0), (200, 2),
                                                        (300, 1), (300, 3)]
  workdir_lib.prepare_workdir(workdir, tiny_config())
  old_umask = os.umask(0o022)
  try:
    workdir_lib.prepare_workdir(workdir, tiny_config())
  finally:
    os.umask(old_umask)
  for name in ("config.json", "metrics.jsonl"):
    assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) & 0o644 == 0o644, name
  assert not [n for n in os.listdir(workdir) if n.endswith(".tmp")]


def test_stray_temporary_files_are_removed_when_a_run_starts(tmp_path):
  stray = tmp_path / ".diffjax-abc123.tmp"
  stray.write_text("half a file")
  workdir_lib.prepare_workdir(str(tmp_path), tiny_config())
  assert not stray.exists()


# --- TensorBoard events. ---

def _write_events(directory, points):
  writer = events_lib.EventFile(directory)
  for tag, step, value in points:
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag,
                                                                   simple_value=value)])
    writer.write(events_lib.event_pb2.Event(step=step, summary=summary))
  writer.close()
  return writer.path


def test_event_reader_stops_at_a_torn_record(tmp_path):
  path = _write_events(str(tmp_path), [("train/loss", 1, 1.0), ("train/loss", 2, 2.0)])
  with open(path, "ab") as f:
    f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00\x01\x02")  # Half a record header.
  assert events_lib.scalars(str(tmp_path)) == {"train/loss": [(1, 1.0), (2, 2.0)]}
  with open(path, "r+b") as f:  # A flipped byte inside the last record's data.
    f.seek(-20, os.SEEK_END)
    f.write(b"\xff")
  assert events_lib.scalars(str(tmp_path)) == {"train/loss": [(1, 1.0)]}


def test_repair_keeps_each_point_once_up_to_the_resumed_step(tmp_path):
  directory = str(tmp_path)
  _write_events(directory, [("train/loss", 100, 1.0), ("train/loss", 200, 2.0),
                            ("eval/w2", 200, 0.5), ("train/loss", 300, 3.0)])
  # A resumed run that was killed: it rewrote step 200 and logged an evaluation at 200
  # whose record never reached metrics.jsonl.
  _write_events(directory, [("train/loss", 200, 2.0), ("eval/w2", 200, 0.5),
                            ("train/loss", 300, 3.0), ("eval/w2", 300, 0.4)])
  new = events_lib.repair_events(directory, last_step=200, evaluated_steps=[])
  new.close()
  assert events_lib.event_files(directory) == [new.path]
  assert events_lib.scalars(directory) == {"train/loss": [(100, 1.0), (200, 2.0)]}
  new = events_lib.repair_events(directory, last_step=300, evaluated_steps=[])
  new.close()
  assert events_lib.scalars(directory) == {"train/loss": [(100, 1.0), (200, 2.0)]}


def test_evaluation_scalars_are_kept_where_metrics_commit_them(tmp_path):
  directory = str(tmp_path)
  _write_events(directory, [("train/loss", 100, 1.0), ("eval/w2", 100, 0.5),
                            ("eval/w2", 200, 0.4), ("train/loss", 200, 2.0)])
  new = events_lib.repair_events(directory, last_step=200, evaluated_steps=[100])
  new.close()
  assert events_lib.scalars(directory) == {"train/loss": [(100, 1.0), (200, 2.0)],
                                           "eval/w2": [(100, 0.5)]}


def test_run_writer_commits_an_evaluation_after_its_events(tmp_path):
  writer = RunWriter(str(tmp_path))
  writer.scalars(10, {"train/loss": 1.5})
  writer.evaluation(10, {"w2": 0.25, "nfe": 20}, {})
  writer.close()
  assert workdir_lib.read_metrics(str(tmp_path)) == [{"step": 10, "w2": 0.25, "nfe": 20}]
  assert events_lib.scalars(str(tmp_path / "events")) == {
      "train/loss": [(10, 1.5)], "eval/w2": [(10, 0.25)], "eval/nfe": [(10, 20.0)]}


# --- Non-finite samples, figures, progress lines. ---

def test_metrics_of_non_finite_samples_are_nan():
  reference = np.random.default_rng(0).normal(size=(50, 2))
  for bad in (np.nan, np.inf):
    samples = reference[::-1].copy()
    samples[3] = bad
    for name in ("w2", "energy_distance"):
      assert np.isnan(metrics.METRICS.get(name)(samples, reference)), (name, bad)


def test_w2_floor_is_the_mean_and_spread_over_fresh_draws():
  """In 1D, W2 between equal-size empirical measures pairs the sorted samples."""
  sample = lambda key, n: jax.random.normal(key, (n, 1)) * 2.0 + 1.0
  reference = np.asarray(sample(jax.random.PRNGKey(99), 300))
  mean, std = metrics.w2_floor(sample, reference, num_draws=4, seed=7)
  sorted_reference = np.sort(reference[:, 0].astype(np.float64))
  draws = [np.sqrt(np.mean((np.sort(np.asarray(sample(
      jax.random.fold_in(jax.random.PRNGKey(7), i), 300), np.float64)[:, 0])
                            - sorted_reference) ** 2)) for i in range(4)]
  np.testing.assert_allclose(mean, np.mean(draws), rtol=1e-9)
  np.testing.assert_allclose(std, np.std(draws, ddof=1), rtol=1e-9)
  assert std > 0


def _longest_blank_band(fig):
  image = matplotlib.image.imread(io.BytesIO(figure_to_png(fig)), format="png")[..., :3]
  blank = np.all(image > 0.99, axis=(1, 2))
  longest = run = 0
  for row in blank:
    run = run + 1 if row else 0
    longest = max(longest, run)
  return longest / len(blank)


def test_figures_of_moons_have_no_blank_band_and_survive_nan():
  reference = np.asarray(get_sampler("moons")(jax.random.PRNGKey(0), 256))
  samples = np.array(get_sampler("moons")(jax.random.PRNGKey(1), 256))
  # The 8x4-inch figure with a suptitle had a blank band of 23% of its height.
  assert _longest_blank_band(plotting.scatter_figure(samples, reference, "title")) < 0.1
  samples[:10] = np.nan
  fig = plotting.scatter_figure(samples, reference, "title")
  figure_to_png(fig)
  assert "[10 of 256 non-finite, not shown]" in fig.axes[1].get_title()
  trajectories = np.full((5, 16, 2), np.inf)
  fig = plotting.trajectory_figure(trajectories, "t")
  figure_to_png(fig)
  assert "[16 of 16 non-finite, not shown]" in fig.axes[0].get_title()


def test_progress_line_before_timing_reports_the_compile(monkeypatch):
  lines = []
  monkeypatch.setattr(logging, "info", lambda fmt, *args: lines.append(fmt % args))
  progress = Progress(200)
  progress.advance(100, timed=False)
  progress.log(100, 0.5)
  progress.advance(100, timed=True)
  progress.log(200, 0.25)
  assert "compiled and ran in" in lines[0] and "steps/s" not in lines[0]
  assert "steps/s | ETA" in lines[1]
