"""Workdirs on object storage: gs:// against a local GCS emulator (tests/gcs_emulator.py).

The quickstart's tiny run with --workdir=gs://test-bucket/run is SIGKILLed mid-run, its
latest checkpoint damaged, and resumed (the damaged one moved to broken_checkpoints/):
its parameters equal an uninterrupted local run's bit for bit (same seed and config, CPU),
and metrics.jsonl and the TensorBoard scalars hold each point once, equal to the local
run's; then --mode=eval and --mode=sample read it, and a two-process jax.distributed run
resumes it from the bucket and trains on (one test: each Python process costs ~10 s of
imports, so the run is shared). metrics.jsonl updates (generation compare-and-swap) and
the lease lock are checked with concurrent writers; bad URLs fail with one line before
anything is written. The tests skip only where the emulator cannot start.
"""
import ast
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from tensorboardX.proto import event_pb2, summary_pb2

import experiments
from experiments import main as cli
from diffjax.train import events as events_lib
from diffjax.train import locks, storage
from diffjax.train import workdir as workdir_lib
from tests.gcs_emulator import Emulator, EmulatorUnavailable
from tests.helpers import REPO, assert_trees_equal, final_state, run_main, tiny_config

BUCKET = "test-bucket"
OVERRIDES = {"train.num_steps": 400, "train.steps_per_call": 20, "train.log_every": 100,
             "train.eval_every": 400, "train.checkpoint_every": 100}
COMPARED_TAGS = ("train/loss", "train/grad_norm", "eval/w2", "eval/energy_distance")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
  """The emulator, with this process's clients pointed at it for the module."""
  try:
    server = Emulator(str(tmp_path_factory.mktemp("gcs")))
  except EmulatorUnavailable as error:
    pytest.skip(f"The GCS emulator cannot start: {error}")
  saved = {k: os.environ.get(k) for k in server.env()}
  os.environ.update(server.env())
  yield server
  server.stop()
  for key, value in saved.items():
    if value is None:
      os.environ.pop(key, None)
    else:
      os.environ[key] = value


def _env(server, cache):
  return dict(os.environ, **server.env(), JAX_PLATFORMS="cpu",
              JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def _command(workdir, overrides, *extra):
  return [sys.executable, "-m", "experiments.main", "--config=configs/quickstart.py:tiny",
          f"--workdir={workdir}", *[f"--config.{k}={v}" for k, v in overrides.items()],
          *extra]


def _committed_steps(url, subdirectory="checkpoints"):
  """Steps of the committed checkpoints of the gs:// workdir `url` (orbax writes
  commit_success.txt last)."""
  directory = storage.workdir_path(url) / subdirectory
  if not directory.exists():
    return []
  return sorted(int(p.name) for p in directory.iterdir()
                if p.name.isdigit() and (p / "commit_success.txt").exists())


def _objects(url):
  """{key: bytes} of every object under gs:// `url`."""
  bucket, _, prefix = url[len("gs://"):].partition("/")
  client = storage._client()  # pylint: disable=protected-access
  return {b.name: b.download_as_bytes() for b in client.list_blobs(bucket, prefix=prefix)}


def _points(directory):
  found = events_lib.scalars(directory)
  return {tag: found.get(tag, []) for tag in COMPARED_TAGS}


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _two_processes(url, overrides, env):
  port = _free_port()
  processes = [subprocess.Popen(
      _command(url, overrides, "--multihost", f"--coordinator_address=localhost:{port}",
               "--num_processes=2", f"--process_id={i}"),
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600)[1] for p in processes]
  for p, err in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  return outputs


def test_quickstart_on_gs_killed_resumed_evaluated_sampled_and_continued_on_two_hosts(
    emulator, tmp_path):
  url, cache = f"gs://{BUCKET}/run", str(tmp_path / "jax_cache")
  env = _env(emulator, cache)
  log = tmp_path / "killed.log"
  with open(log, "w") as stderr:
    killed = subprocess.Popen(_command(url, OVERRIDES), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=stderr)
  # A thread kills it once it committed two checkpoints (so one can be damaged), while
  # this process makes the uninterrupted local run.
  outcome = {}

  def kill_after_two_checkpoints():
    deadline = time.time() + 240
    while len(_committed_steps(url)) < 2 and killed.poll() is None and (
        time.time() < deadline):
      time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    outcome["code"] = killed.wait()
  killer = threading.Thread(target=kill_after_two_checkpoints)
  killer.start()
  reference_dir = str(tmp_path / "local")
  config = tiny_config(**OVERRIDES)
  experiments.run(config, reference_dir)
  killer.join()
  assert outcome["code"] == -signal.SIGKILL, log.read_text()[-3000:]
  steps = _committed_steps(url)
  assert len(steps) >= 2, (steps, log.read_text()[-3000:])
  assert steps[-1] < OVERRIDES["train.num_steps"], "the kill landed after the run ended"
  assert (storage.workdir_path(url) / locks.LOCK_FILE).exists()  # Left by the killed run.
  # Damage the latest checkpoint: every object of it emptied (it still looks committed).
  bucket = storage._client().bucket(BUCKET)  # pylint: disable=protected-access
  for key in _objects(f"{url}/checkpoints/{steps[-1]}/"):
    bucket.blob(key).upload_from_string(b"")

  resumed = run_main(_command(url, OVERRIDES)[3:], env=env, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Resuming from step {steps[-2]} of 400" in resumed.stderr
  assert f"Checkpoint at step {steps[-1]} in {url}/checkpoints failed to restore" in (
      resumed.stderr)
  assert "Took over the lock of process" in resumed.stderr
  assert _committed_steps(url, "broken_checkpoints") == [steps[-1]]
  assert not (storage.workdir_path(url) / locks.LOCK_FILE).exists()  # Released.
  assert_trees_equal(final_state(config, reference_dir), final_state(config, url))
  assert workdir_lib.read_metrics(url) == workdir_lib.read_metrics(reference_dir)
  points, expected = _points(f"{url}/events"), _points(f"{reference_dir}/events")
  assert [s for s, _ in expected["train/loss"]] == [100, 200, 300, 400]
  for tag in COMPARED_TAGS:  # Each point once, with the local run's value.
    assert sorted(points[tag]) == sorted(expected[tag]), tag
  plots = {os.path.basename(p) for p in _objects(f"{url}/plots/")}
  assert plots == set(os.listdir(os.path.join(reference_dir, "plots")))

  experiments.run(config, url, mode="eval")
  assert [(r["step"], r.get("mode")) for r in workdir_lib.read_metrics(url)] == [
      (400, None), (400, "eval")]
  experiments.run(config, url, mode="sample")
  with np.load(io.BytesIO(_objects(f"{url}/samples/samples_0000400.npz")[
      "run/samples/samples_0000400.npz"])) as samples:
    assert samples["samples"].shape[-1] == 2 and np.all(np.isfinite(samples["samples"]))

  # Two processes (jax.distributed on localhost, one device each) resume the run from the
  # bucket and train on: each writes its own part of the arrays (OCDBT, one per process),
  # process 0 the rest.
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  outputs = _two_processes(url, dict(OVERRIDES, **{"train.num_steps": 500}), env)
  assert "Resuming from step 400 of 500" in outputs[0]
  assert _committed_steps(url)[-1] == 500
  names = _objects(f"{url}/checkpoints/500/")
  assert {re.search(r"ocdbt\.process_(\d)", n).group(1) for n in names
          if "ocdbt.process_" in n} == {"0", "1"}
  records = workdir_lib.read_metrics(url)
  assert [(r["step"], r.get("mode")) for r in records] == [
      (400, None), (400, "eval"), (500, None)]  # Written once, by process 0.
  assert records[-1]["w2"] < 1.5  # Trained: an untrained flow is far off (W2 > 2).
  assert not (storage.workdir_path(url) / locks.LOCK_FILE).exists()


def test_metrics_records_from_concurrent_writers_are_all_kept(emulator):
  """Compare-and-swap on the object's generation: 8 threads add records to the same
  metrics.jsonl at once; a plain read-modify-write would lose some."""
  url = f"gs://{BUCKET}/metrics"
  errors = []

  def add(step):
    try:
      workdir_lib.add_metrics_record(url, {"step": step, "w2": step / 10})
    except Exception as error:  # pylint: disable=broad-except
      errors.append(error)

  threads = [threading.Thread(target=add, args=(s,)) for s in (80, 10, 70, 20, 60, 30, 50,
                                                               40)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors, errors
  assert [r["step"] for r in workdir_lib.read_metrics(url)] == list(range(10, 81, 10))
  workdir_lib.truncate_metrics(url, 35)
  assert [r["step"] for r in workdir_lib.read_metrics(url)] == [10, 20, 30]


def _scalar_event(step):
  return event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[
      summary_pb2.Summary.Value(tag="train/loss", simple_value=float(step))]))


def test_event_segments_on_gs_are_read_in_order_and_compacted_on_resume(emulator,
                                                                        monkeypatch):
  """No append on an object store: each flush uploads the current segment whole, and a
  full segment is followed by a new one; a resume keeps the points up to its step in one
  file. A write not yet flushed is lost with a kill, as locally."""
  url = f"gs://{BUCKET}/events"
  full_size = events_lib.SEGMENT_BYTES
  monkeypatch.setattr(events_lib, "SEGMENT_BYTES", 300)
  events = events_lib.EventFile(url)
  for step in range(1, 41):
    events.write(_scalar_event(step))
    if step % 5 == 0:
      events.flush()
  events.write(_scalar_event(41))  # Never flushed: the process is killed here.
  assert len(events_lib.event_files(url)) >= 3
  assert events_lib.scalars(url)["train/loss"] == [(s, float(s)) for s in range(1, 41)]
  monkeypatch.setattr(events_lib, "SEGMENT_BYTES", full_size)
  resumed = events_lib.repair_events(url, 30, evaluated_steps=[])
  resumed.write(_scalar_event(31))
  resumed.close()
  assert len(events_lib.event_files(url)) == 1
  assert events_lib.scalars(url)["train/loss"] == [(s, float(s)) for s in range(1, 32)]


def _holder(url):
  return json.loads(storage.read_object(f"{url}/{locks.LOCK_FILE}")[0])


def test_gs_lock_refuses_a_second_run_and_takes_over_a_dead_ones(emulator):
  url = f"gs://{BUCKET}/lock"
  lock = workdir_lib.lock_workdir(url, "train")
  assert isinstance(lock, locks.ObjectLock)
  with lock:
    holder = _holder(url)
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(workdir_lib.WorkdirLockedError,
                       match=f"in use by process {os.getpid()} on host "
                             f"{re.escape(socket.gethostname())} \\(--mode=train"):
      locks.ObjectLock(url, "eval").acquire()
  assert storage.read_object(f"{url}/{locks.LOCK_FILE}")[0] is None  # Released.

  # A killed run's lock on this host (its pid has ended) is taken over at once.
  dead = subprocess.Popen([sys.executable, "-c", ""])
  dead.wait()
  stale = dict(holder, pid=dead.pid, renewed=time.time())
  storage.write_object(f"{url}/{locks.LOCK_FILE}", json.dumps(stale).encode(), 0)
  with locks.ObjectLock(url, "sample"):
    assert _holder(url)["mode"] == "sample"
  # Another host's lock is taken over only once its lease ran out.
  other = dict(holder, host="elsewhere", renewed=time.time(), lease_seconds=60)
  storage.write_object(f"{url}/{locks.LOCK_FILE}", json.dumps(other).encode(), 0)
  with pytest.raises(workdir_lib.WorkdirLockedError, match="on host elsewhere"):
    locks.ObjectLock(url, "train").acquire()
  _, generation = storage.read_object(f"{url}/{locks.LOCK_FILE}")
  expired = dict(other, renewed=time.time() - 61)
  storage.write_object(f"{url}/{locks.LOCK_FILE}", json.dumps(expired).encode(), generation)
  lock = locks.ObjectLock(url, "train", lease_seconds=0.4).acquire()
  try:  # The heartbeat renews it; a run whose lock was taken over stops.
    first = _holder(url)["renewed"]
    time.sleep(0.3)
    assert _holder(url)["renewed"] > first
    while True:  # Another run takes it over (between two of the heartbeat's renewals).
      _, generation = storage.read_object(f"{url}/{locks.LOCK_FILE}")
      try:
        storage.write_object(f"{url}/{locks.LOCK_FILE}", json.dumps(other).encode(),
                             generation)
        break
      except storage.GenerationMismatch:
        continue
    time.sleep(0.3)
    with pytest.raises(workdir_lib.WorkdirLockedError, match="was taken over by process"):
      lock.check_held()
  finally:
    lock.release()
  assert _holder(url)["host"] == "elsewhere"  # Not ours any more: left in place.


def _refused(argv, capfd):
  """The command line run in-process on `argv`: (exit code, its one line of output)."""
  code = cli.cli(["main", "--config=configs/quickstart.py:tiny", *argv])
  out, err = capfd.readouterr()
  lines = [line for line in (out + err).splitlines() if line.strip()]
  assert len(lines) == 1 and "Traceback" not in out + err, out + err
  return code, lines[0]


def test_bad_workdir_urls_fail_with_one_line_before_anything_is_written(emulator, tmp_path,
                                                                        monkeypatch, capfd):
  cases = {
      "s4://bucket/run": "error: --workdir=s4://bucket/run: no client handles the URL "
                         "scheme s4://; use a local directory or gs://bucket/path",
      "file:///tmp/run": "error: --workdir=file:///tmp/run: no client handles the URL "
                         "scheme file:// (give a local path without file://)",
      "gs:///run": "error: --workdir=gs:///run names no bucket; give gs://<bucket>/<path>.",
      "gs://no-such-bucket/run": "error: --workdir=gs://no-such-bucket/run: the bucket "
                                 "no-such-bucket does not exist; create it (gcloud storage "
                                 "buckets create gs://no-such-bucket) or choose another "
                                 "--workdir.",
  }
  for url, message in cases.items():
    code, line = _refused([f"--workdir={url}"], capfd)
    assert code == 2 and line.startswith(message), line
  for mode in ("eval", "sample"):
    code, line = _refused([f"--workdir=gs://{BUCKET}/never", f"--mode={mode}"], capfd)
    assert code == 2 and line == (f"error: --mode={mode}: --workdir=gs://{BUCKET}/never does "
                                  "not exist; train first (--mode=train)."), line
  assert not _objects(f"gs://{BUCKET}/never")
  # Off the emulator, without credentials: no key file, no gcloud login (an empty gcloud
  # configuration), and no metadata server (none on this machine).
  monkeypatch.delenv("STORAGE_EMULATOR_HOST")
  monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
  monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
  code, line = _refused(["--workdir=gs://bucket/run"], capfd)
  assert code == 2 and re.fullmatch(
      r"error: --workdir=gs://bucket/run: no Google Cloud credentials \(.+\); set "
      r"GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, .* for a local "
      r"emulator set STORAGE_EMULATOR_HOST\.", line), line
  monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
  code, line = _refused(["--workdir=gs://bucket/run"], capfd)
  assert code == 2 and "no Google Cloud credentials (File " in line, line


def test_no_os_path_or_open_on_workdir_paths():
  """Every workdir file goes through diffjax.train.storage (etils.epath): the only calls
  of os.path / open / shutil / os file functions in diffjax/train/ and experiments/ are in
  the places that work on local paths only, each listed here with its reason."""
  allowed = {
      # storage: the local branch of each operation (temporary file, fsync, rename).
      "diffjax/train/storage.py": None,
      # The flock of a local workdir (an OS file lock needs an OS file); /proc.
      "diffjax/train/locks.py": {"FileLock", "_pid_namespace"},
      # check_workdir_path: a local path checked with the OS's own view (a URL returns
      # before it).
      "diffjax/train/workdir.py": {"check_workdir_path", "_writable"},
      # Source locations of log records and config files: not workdir paths.
      "diffjax/train/logs.py": {"<module>", "QuietLibraries"},
      "experiments/main.py": {"_where", "_config_files_near", "load_config_file"},
  }
  pattern = re.compile(r"^(os\.path\.\w+|open|shutil\.\w+|os\.(open|remove|replace|rename|"
                       r"makedirs|listdir|walk|unlink|rmdir|stat|scandir)|glob\.\w+)$")
  found = []
  for root in ("diffjax/train", "experiments"):
    for name in sorted(os.listdir(os.path.join(REPO, root))):
      if not name.endswith(".py"):
        continue
      relative = f"{root}/{name}"
      with open(os.path.join(REPO, relative)) as f:
        tree = ast.parse(f.read())
      owners = {}
      for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
          for sub in ast.walk(node):
            owners.setdefault(id(sub), node.name)
      for node in ast.walk(tree):
        if isinstance(node, ast.Call) and pattern.match(ast.unparse(node.func)):
          owner = owners.get(id(node), "<module>")
          permitted = allowed.get(relative, set())
          if permitted is not None and owner not in permitted:
            found.append(f"{relative}:{node.lineno} ({owner}) {ast.unparse(node)}")
  assert not found, "workdir file access outside diffjax.train.storage:\n" + "\n".join(found)
