"""The command line, as a user runs it: quiet logs, clear endings, errors naming the bad
value and what is valid (the fuzz of bad invocations is tests/test_cli_fuzz.py)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import experiments
from diffjax.models import MODELS
from diffjax.registry import UnknownComponentError
from experiments import main as cli
from tests.helpers import REPO, run_main, tiny_config

TINY = "--config=configs/quickstart.py:tiny"

# Every line a quickstart prints at the default verbosity.
EXPECTED_LINES = (r"loop\.py:\d+\] Starting a new run in .* on 1 device\(s\): 200 steps\.",
                  r"loop\.py:\d+\] Compiling the training step\.\.\.",
                  r"writer\.py:\d+\] step 100/200 \| loss \d+\.\d+ \| compiled and ran in "
                  r"\d+\.\d s \(rate from the next line\)",
                  r"loop\.py:\d+\] eval at step 100: w2=.*",
                  r"writer\.py:\d+\] step 200/200 \| loss \d+\.\d+ \| \d+\.\d steps/s \| "
                  r"ETA \d\d:\d\d:\d\d",
                  r"loop\.py:\d+\] eval at step 200: w2=.*",
                  r"loop\.py:\d+\] Finished: step 200 in .*")


def test_quickstart_tiny_prints_progress_and_evaluations_only(tmp_path, capfd):
  workdir = str(tmp_path / "run")
  result = run_main([TINY, f"--workdir={workdir}"])
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stderr.splitlines()
  assert len(lines) == len(EXPECTED_LINES), result.stderr
  for line, pattern in zip(lines, EXPECTED_LINES):
    assert re.search(pattern, line), (line, pattern)
  assert os.path.exists(os.path.join(workdir, "metrics.jsonl"))
  # A rerun of the finished command says it is complete and what to do (in-process).
  assert cli.cli(["main", TINY, f"--workdir={workdir}"]) == 0
  output = capfd.readouterr().err
  assert "is complete: it is at step 200 and ends at step 200" in output
  assert "--config.train.num_steps" in output and "--mode=eval" in output


def test_verbosity_brings_library_logs_back(tmp_path, capfd):
  workdir = str(tmp_path / "run")
  overrides = {"train.num_steps": 10, "train.steps_per_call": 10, "train.eval_every": 0}
  experiments.run(tiny_config(**overrides), workdir)
  args = ["main", TINY, f"--workdir={workdir}", "--mode=eval",
          *[f"--config.{k}={v}" for k, v in overrides.items()]]
  capfd.readouterr()
  assert cli.cli(args) == 0
  quiet = capfd.readouterr().err
  try:
    assert cli.cli([*args, "--verbosity=0"]) == 0
    verbose = capfd.readouterr().err
  finally:
    cli.logs.configure_logging(verbose=False)
  assert "checkpoint_manager.py" not in quiet and "eval at step 10" in quiet
  assert "checkpoint_manager.py" in verbose
  # The next command line in this process is quiet again: absl's shared --verbosity flag
  # does not carry over (an order-dependent failure of the CLI fuzz tests before).
  assert cli.cli(args) == 0
  assert "checkpoint_manager.py" not in capfd.readouterr().err


def _parse(argv):
  """Parses argv as the command line does (a fresh FlagValues)."""
  return cli.parse(["main", *argv])


@pytest.mark.parametrize("args, message", [
    (["--config.train.no_such_key=1"], "no_such_key"),
    (["--config.train.num_steps=many"], "many"),
    (["--config=configs/quickstart.py:huge"], "Unknown config argument 'huge'"),
])
def test_bad_config_flags_are_refused(tmp_path, args, message):
  with pytest.raises(cli.UsageError, match=message):
    _parse([TINY, f"--workdir={tmp_path}", *args])


@pytest.mark.parametrize("args, message", [
    (["--config.model.name=transformerr"], "Unknown model 'transformerr'; valid names are: "),
    (["--config.sample.solver=rk9"], "Unknown sampler 'rk9'; valid names are: "),
])
def test_unknown_component_names_list_the_valid_ones(tmp_path, args, message):
  flags = _parse([TINY, f"--workdir={tmp_path / 'run'}", *args])
  with pytest.raises(UnknownComponentError, match=message):
    experiments.run(flags.config, flags.workdir)
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("missing, message", [("--config", "--config is required"),
                                              ("--workdir", "--workdir must have a value")])
def test_missing_required_flag(tmp_path, missing, message):
  args = {"--config": TINY, "--workdir": f"--workdir={tmp_path}"}
  del args[missing]
  with pytest.raises(cli.UsageError, match=message):
    _parse(list(args.values()))


def test_user_errors_exit_with_a_message_not_a_traceback(tmp_path):
  """The real entry point (`python -m experiments.main`): exit code 2, one line."""
  result = run_main([TINY, f"--workdir={tmp_path}", "--config.model.name=transformerr"])
  assert result.returncode == 2
  assert result.stderr.strip() == ("error: Unknown model 'transformerr'; valid names are: "
                                   + ", ".join(sorted(MODELS.names())) + ".")


def test_incompatible_workdir_message(tmp_path, capfd):
  workdir = str(tmp_path / "run")
  experiments.run(tiny_config(**{"train.num_steps": 50, "train.eval_every": 0}), workdir)
  capfd.readouterr()
  assert cli.cli(["main", TINY, f"--workdir={workdir}", "--config.model.depth=3"]) == 2
  output = capfd.readouterr().err
  assert "model.depth: 2 (recorded) vs 3 (given)" in output
  assert "--overwrite" in output


def test_sigterm_before_training_exits_zero_with_a_message(tmp_path, capfd, monkeypatch):
  """The command line's SIGTERM handler ends the process at once before training (here
  os._exit is replaced so that the test process survives)."""
  class Exited(Exception):
    pass

  def exit_now(message):
    raise Exited(message)

  def run(*args, **kwargs):
    del args, kwargs
    os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(cli.preemption, "_exit_now", exit_now)
  monkeypatch.setattr(experiments, "run", run)
  with pytest.raises(Exited, match=r"Stopped on request \(signal 15\) before training"):
    cli.cli(["main", TINY, f"--workdir={tmp_path / 'run'}"])
  assert signal.getsignal(signal.SIGTERM) is not cli.preemption._handler  # Restored.


def test_data_and_weights_problems_are_user_errors():
  """They end the command with their message and exit code 1, not a traceback."""
  from diffjax.data import DatasetNotPreparedError  # pylint: disable=g-import-not-at-top
  from diffjax.inception import InceptionWeightsNotFoundError  # pylint: disable=g-import-not-at-top
  for error in (DatasetNotPreparedError, InceptionWeightsNotFoundError, UnknownComponentError):
    assert issubclass(error, cli.USER_ERRORS), error



@pytest.mark.parametrize("bad, message", [
    ("--config.train.num_step=5", "error: --config.train.num_step: the config has no key "
     "train.num_step; closest valid keys: train.num_steps, "),
    ("--config.model.name=mlpp", "error: Unknown model 'mlpp'; valid names are: "),
])
def test_usage_errors_print_one_line_without_loading_other_families(tmp_path, bad, message):
  """`python -m experiments.main` loads the config's family only, and no heavy back end,
  before it refuses a misspelt key or an unknown name (within seconds; the time is
  asserted loosely, machines vary)."""
  start = time.monotonic()
  result = run_main(["--config=configs/quickstart.py", f"--workdir={tmp_path / 'run'}", bad],
                    env={"PYTHONPROFILEIMPORTTIME": "1"}, timeout=120)
  elapsed = time.monotonic() - start
  lines = result.stderr.splitlines()
  imported = {line.rsplit("|", 1)[1].strip() for line in lines
              if line.startswith("import time:")}
  printed = [line for line in lines if not line.startswith("import time:")]
  assert result.returncode == 2 and len(printed) == 1, result.stderr[-3000:]
  assert printed[0].startswith(message), printed
  families = {name for name in imported if name.startswith("experiments.")}
  assert families <= {"experiments.toy2d", "experiments.main"}, families   # Its own, if any.
  assert not imported & {"experiments.text", "experiments.guidance", "experiments.bridges",
                         "experiments.images", "matplotlib", "torch", "ot", "sklearn"}
  assert not (tmp_path / "run").exists()
  assert elapsed < 15, elapsed


def _catches_sigterm(pid):
  """Whether process `pid` has a SIGTERM handler (Linux: the SigCgt mask of its status)."""
  with open(f"/proc/{pid}/status") as status:
    caught = next(line for line in status if line.startswith("SigCgt:")).split()[1]
  return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's /proc")
def test_sigterm_while_starting_exits_zero_with_a_message(tmp_path):
  """`python -m experiments.main` stopped while it imports the library: exit code 0, a
  message, nothing written."""
  process = subprocess.Popen(
      [sys.executable, "-m", "experiments.main", TINY, f"--workdir={tmp_path / 'run'}"],
      cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu"), stderr=subprocess.PIPE,
      text=True)
  while not _catches_sigterm(process.pid) and process.poll() is None:
    time.sleep(0.01)  # The first handler is installed by experiments/__init__.py.
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  assert "Stopped on request (signal 15)" in stderr
  assert not (tmp_path / "run").exists()
