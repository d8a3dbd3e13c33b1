"""A fuzz of bad invocations of the command line, run in-process (`experiments.main.cli`).

Each must end with a non-zero exit code (2 for usage errors, 1 for runtime failures), one
line `error: ...` naming the bad value, no traceback, and leave the workdir byte for byte
as it was (or not create it).
"""
import os

import pytest

from diffjax.train import workdir as workdir_lib
from experiments import main as cli
from tests.helpers import tiny_config

TINY = "--config=configs/quickstart.py:tiny"

BAD_CONFIG_FILES = {
    "syntax.py": "def get_config(:\n",
    "no_get_config.py": "x = 1\n",
    "import_error.py": "import no_such_module_for_diffjax\n",
    "not_a_config.py": "def get_config():\n  return 3\n",
    "raises.py": "def get_config():\n  return {}['missing']\n",
}

# (extra argv, expected exit code, text the error line must contain).
USAGE = [
    # Flags, the config file and its keys.
    (["--config.train.num_step=20"], 2, "closest valid keys: train.num_steps"),
    (["--config.train.learning_rate=0.1"], 2, "optim.learning_rate"),
    (["--config.nosection.width=1"], 2, "no key nosection.width"),
    (["--config.train.num_steps.x=1"], 2, "train.num_steps is a value, not a section"),
    (["--config.train.num_steps=many"], 2, "--config.train.num_steps=many: train.num_steps "
                                           "takes int"),
    (["--config.train.num_steps=2.5"], 2, "train.num_steps takes int"),
    (["--config.optim.learning_rate=abc"], 2, "optim.learning_rate takes float"),
    (["--config.eval.use_ema=maybe"], 2, "eval.use_ema takes true or false"),
    (["--config.train=3"], 2, "train is a section; set its keys"),
    (["--config.train.num_steps"], 2, "--config.train.num_steps"),
    (["--config=configs/quickstart.py:huge"], 2, "Unknown config argument 'huge'"),
    (["--config=configs/quickstrat.py"], 2, "no file configs/quickstrat.py; did you mean "
                                           "configs/quickstart.py"),
    (["--mode=trian"], 2, "--mode=trian"),
    (["--foo=1"], 2, "Unknown command line flag 'foo'"),
    (["stray"], 2, "unexpected argument(s): stray"),
    (["--num_processes=2"], 2, "need --multihost"),
    (["--multihost", "--num_processes=2"], 2, "give all of --coordinator_address"),
    (["--mode=eval", "--overwrite"], 2, "does not apply to --mode=eval"),
    # Engine values (diffjax.train.validation).
    (["--config.train.steps_per_call=0"], 2, "train.steps_per_call=0 is out of range"),
    (["--config.train.keep_checkpoints=0"], 2, "train.keep_checkpoints=0 is out of range"),
    (["--config.train.num_steps=0"], 2, "train.num_steps=0 is out of range"),
    (["--config.train.num_steps=-5"], 2, "train.num_steps=-5"),
    (["--config.train.checkpoint_every=-1"], 2, "train.checkpoint_every=-1"),
    (["--config.train.log_every=-1"], 2, "train.log_every=-1"),
    (["--config.train.eval_every=-3"], 2, "train.eval_every=-3"),
    (["--config.train.batch_size=0"], 2, "train.batch_size=0"),
    (["--config.train.batch_size=-8"], 2, "train.batch_size=-8"),
    (["--config.train.grad_accum_steps=3"], 2, "train.batch_size=64 must be divisible by "
                                              "train.grad_accum_steps"),
    (["--config.train.grad_accum_steps=0"], 2, "train.grad_accum_steps=0"),
    (["--config.train.model_axis_size=2"], 2, "train.model_axis_size=2 must divide"),
    (["--config.optim.name=sgd9"], 2, "optim.name='sgd9' is not one of the valid names: "
                                      "adam, adamw, lion"),
    (["--config.optim.schedule=zigzag9"], 2, "optim.schedule='zigzag9'"),
    (["--config.optim.learning_rate=0"], 2, "optim.learning_rate=0.0 is out of range: it "
                                            "must be > 0"),
    (["--config.optim.learning_rate=nan"], 2, "optim.learning_rate=nan must be a finite"),
    (["--config.optim.b1=1"], 2, "optim.b1=1.0 is out of range: it must be in [0, 1)"),
    (["--config.optim.ema_decay=1.5"], 2, "optim.ema_decay=1.5"),
    (["--config.optim.end_lr_factor=2"], 2, "optim.end_lr_factor=2.0"),
    (["--config.optim.warmup_steps=-1"], 2, "optim.warmup_steps=-1"),
    (["--config.optim.grad_clip=-1"], 2, "optim.grad_clip=-1.0"),
    (["--config.optim.weight_decay=0.1"], 2, "optim.weight_decay=0.1 has no effect with "
                                             "optim.name='adam'"),
    (["--config.seed=-1"], 2, "seed=-1"),
    # Component names (the experiment's builders).
    (["--config.model.name=transformerr"], 2, "Unknown model 'transformerr'; valid names"),
    (["--config.sample.solver=rk9"], 2, "Unknown sampler 'rk9'; valid names"),
    (["--config.data.target=moonz"], 2, "'moonz'"),
    (["--config.path.name=straight"], 2, "'straight'"),
    (["--config.coupling.name=magic"], 2, "Unknown coupling 'magic'; valid names"),
    (["--config.objective.name=nope"], 2, "Unknown objective 'nope'; valid names"),
    (["--config.objective.time_sampler=zz"], 2, "'zz'; valid names"),
    (["--config.eval.metrics=w3"], 2, "Unknown metric 'w3'; valid names"),
    (["--config.model.activation=relux"], 2, "'relux'; valid names"),
    # Component values.
    (["--config.model.width=0"], 2, "model.width must be an integer >= 1; got 0"),
    (["--config.model.depth=-2"], 2, "model.depth must be an integer >= 1; got -2"),
    (["--config.model.time_dim=0"], 2, "model.time_dim"),
    (["--config.eval.num_samples=0"], 2, "eval.num_samples=0 is out of range"),
    (["--config.data.dim=0"], 2, "data.dim=0 is out of range"),
    (["--config.sample.num_steps=0"], 2, "sample.num_steps=0 is out of range"),
    (["--config.sample.num_trajectories=-1"], 2, "sample.num_trajectories=-1"),
    (["--config.eval.reference_seed=-1"], 2, "eval.reference_seed=-1"),
]


def _snapshot(root):
  """Every path under `root` with its bytes (None for directories), or None if absent."""
  if not os.path.exists(root):
    return None
  entries = {}
  for directory, dirs, files in os.walk(root):
    for name in dirs:
      entries[os.path.relpath(os.path.join(directory, name), root)] = None
    for name in files:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        entries[os.path.relpath(path, root)] = f.read()
  return entries


def _run(argv, capfd):
  code = cli.cli(["main", *argv])
  out, err = capfd.readouterr()
  return code, out + err


def _assert_refused(code, output, expected_code, text):
  lines = [line for line in output.splitlines() if line.strip()]
  assert code == expected_code, output
  assert len(lines) == 1, output
  assert lines[0].startswith("error: "), output
  assert text in lines[0], output
  assert "Traceback" not in output


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
  """A workdir holding a run of the tiny config (its config.json, a metrics record, an
  events file and samples, which a rerun would keep: a run with data; no checkpoint, no
  training needed). A run without any data would be replaced by a rerun (test_engine)."""
  workdir = str(tmp_path_factory.mktemp("fuzz") / "run")
  os.makedirs(workdir)
  workdir_lib.prepare_workdir(workdir, tiny_config())
  workdir_lib.add_metrics_record(workdir, {"step": 100, "w2": 0.5})
  with open(os.path.join(workdir, "samples.npz"), "wb") as f:
    f.write(b"\0" * 16)
  os.makedirs(os.path.join(workdir, "events"))
  with open(os.path.join(workdir, "events", "events.out.tfevents.1.host"), "wb") as f:
    f.write(b"\0" * 16)
  return workdir


@pytest.mark.parametrize("argv, expected_code, text", USAGE,
                         ids=[" ".join(case[0]) for case in USAGE])
def test_bad_invocation_on_a_new_workdir(tmp_path, capfd, argv, expected_code, text):
  workdir = tmp_path / "run"
  code, output = _run([TINY, f"--workdir={workdir}", *argv], capfd)
  _assert_refused(code, output, expected_code, text)
  assert not workdir.exists()


@pytest.mark.parametrize("argv, expected_code, text", [
    (["--config.train.steps_per_call=0"], 2, "train.steps_per_call=0"),
    (["--config.optim.name=sgd9"], 2, "optim.name='sgd9'"),
    (["--config.model.name=transformerr"], 2, "transformerr"),
    (["--config.train.num_step=20"], 2, "train.num_steps"),
    (["--config.model.depth=3"], 2, "model.depth: 2 (recorded) vs 3 (given)"),
    (["--mode=eval"], 2, "--mode=eval: no checkpoint in"),
    (["--mode=sample"], 2, "--mode=sample: no checkpoint in"),
])
def test_bad_invocation_leaves_an_existing_run_unchanged(existing_run, capfd, argv,
                                                         expected_code, text):
  before = _snapshot(existing_run)
  code, output = _run([TINY, f"--workdir={existing_run}", *argv], capfd)
  _assert_refused(code, output, expected_code, text)
  assert _snapshot(existing_run) == before


@pytest.mark.parametrize("name, text", [
    ("syntax.py", "syntax.py line 1: invalid syntax"),
    ("no_get_config.py", "defines no get_config() function"),
    ("import_error.py", "ModuleNotFoundError: No module named 'no_such_module_for_diffjax'"),
    ("not_a_config.py", "get_config() returned int, not an ml_collections.ConfigDict"),
    ("raises.py", "KeyError"),
])
def test_broken_config_files(tmp_path, capfd, name, text):
  path = tmp_path / name
  path.write_text(BAD_CONFIG_FILES[name])
  code, output = _run([f"--config={path}", f"--workdir={tmp_path / 'run'}"], capfd)
  _assert_refused(code, output, 2, text)
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, text", [
    ([f"--workdir={os.path.join(os.path.dirname(__file__), '__init__.py')}"], "is a file"),
    ([f"--workdir={os.path.join(os.path.dirname(__file__), '__init__.py', 'run')}"],
     "cannot be created"),
    (["--workdir=/sys/diffjax_cannot_create_this"], "cannot be created"),
    ([TINY], "--workdir must have a value"),
    ([TINY, "--workdir="], "--workdir='' must be a directory path"),
    (["--workdir=/tmp/x"], "--config is required"),
])
def test_bad_or_missing_workdir_and_config(capfd, argv, text):
  if not any(arg.startswith("--config") for arg in argv) and "--config" not in text:
    argv = [TINY, *argv]
  code, output = _run(argv, capfd)
  _assert_refused(code, output, 2, text)
  assert not os.path.exists("/sys/diffjax_cannot_create_this")


def test_read_only_workdir(existing_run, capfd, monkeypatch):
  """(The tests run as root, for whom permission bits do not stop writes: the check's
  answer is simulated.)"""
  before = _snapshot(existing_run)
  monkeypatch.setattr(workdir_lib, "_writable", lambda path: False)
  code, output = _run([TINY, f"--workdir={existing_run}"], capfd)
  _assert_refused(code, output, 2, "is not writable")
  assert _snapshot(existing_run) == before


def test_locked_workdir_names_the_holder(existing_run, capfd):
  before = _snapshot(existing_run)
  with workdir_lib.WorkdirLock(existing_run, "train"):
    locked = _snapshot(existing_run)
    code, output = _run([TINY, f"--workdir={existing_run}"], capfd)
    _assert_refused(code, output, 1, f"in use by process {os.getpid()} on host ")
    assert "--mode=train" in output
    assert _snapshot(existing_run) == locked
  assert _snapshot(existing_run) == before  # The lock file goes with its holder.


def test_damaged_config_json_is_refused(tmp_path, capfd):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text('{"train": ')
  code, output = _run([TINY, f"--workdir={workdir}"], capfd)
  _assert_refused(code, output, 2, "config.json is not valid JSON")
  assert sorted(os.listdir(workdir)) == ["config.json"]


def test_help_exits_zero(capfd):
  code, output = _run(["--help"], capfd)
  assert code == 0 and "--workdir" in output and "--config" in output
