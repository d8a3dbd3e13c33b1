"""The command line, as a user runs it: errors name the bad value and what is valid."""
import os

import pytest

from diffjax.registry import UnknownComponentError

from tests.helpers import run_main

TINY = "--config=configs/quickstart.py:tiny"


def test_quickstart_tiny_trains_through_the_command_line(tmp_path):
  workdir = str(tmp_path / "run")
  result = run_main([TINY, f"--workdir={workdir}", "--config.train.num_steps=100",
                     "--config.train.eval_every=100"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "eval at step 100: w2=" in result.stderr
  assert "steps/s | ETA" in result.stderr
  assert os.path.exists(os.path.join(workdir, "metrics.jsonl"))
  # A rerun of the finished command resumes and has nothing left to do.
  again = run_main([TINY, f"--workdir={workdir}", "--config.train.num_steps=100",
                    "--config.train.eval_every=100"])
  assert again.returncode == 0 and "Resuming from step 100" in again.stderr


def _parse(argv):
  """Parses argv with the flags experiments.main defines, in a fresh FlagValues."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from experiments import main as cli  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  cli.define_flags(flag_values, ["main", *argv])
  flag_values(["main", *argv])
  return flag_values


@pytest.mark.parametrize("args, message", [
    (["--config.train.no_such_key=1"], "no_such_key"),
    (["--config.train.num_steps=many"], "many"),
    (["--config=configs/quickstart.py:huge"], "Unknown config argument 'huge'"),
])
def test_bad_config_flags_are_refused(tmp_path, args, message):
  with pytest.raises(Exception, match=message):
    _parse([TINY, f"--workdir={tmp_path}", *args])


@pytest.mark.parametrize("args, message", [
    (["--config.model.name=transformerr"], "Unknown model 'transformerr'; valid names are: "),
    (["--config.sample.solver=rk9"], "Unknown sampler 'rk9'; valid names are: "),
])
def test_unknown_component_names_list_the_valid_ones(tmp_path, args, message):
  import experiments  # pylint: disable=g-import-not-at-top
  flags = _parse([TINY, f"--workdir={tmp_path / 'run'}", *args])
  with pytest.raises(UnknownComponentError, match=message):
    experiments.run(flags.config, flags.workdir)
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("missing", ["--config", "--workdir"])
def test_missing_required_flag(tmp_path, missing):
  args = {"--config": TINY, "--workdir": f"--workdir={tmp_path}"}
  del args[missing]
  with pytest.raises(Exception, match=f"Flag {missing} must have a value other than None"):
    _parse(list(args.values()))


def test_user_errors_exit_with_a_message_not_a_traceback(tmp_path):
  result = run_main([TINY, f"--workdir={tmp_path}", "--config.model.name=transformerr"])
  assert result.returncode == 1
  assert "error: Unknown model 'transformerr'; valid names are: " in result.stderr
  assert "Traceback" not in result.stderr


def test_incompatible_workdir_message(tmp_path):
  workdir = str(tmp_path / "run")
  import experiments  # pylint: disable=g-import-not-at-top
  from tests.helpers import tiny_config  # pylint: disable=g-import-not-at-top
  experiments.run(tiny_config(**{"train.num_steps": 50, "train.eval_every": 0}), workdir)
  second = run_main([TINY, f"--workdir={workdir}", "--config.model.depth=3"])
  assert second.returncode == 1
  assert "model.depth: 2 (recorded) vs 3 (given)" in second.stderr
  assert "--overwrite" in second.stderr


def test_data_and_weights_problems_are_user_errors():
  """They end the command with their message and exit code 1, not a traceback."""
  from diffjax.data import DatasetNotPreparedError  # pylint: disable=g-import-not-at-top
  from diffjax.inception import InceptionWeightsNotFoundError  # pylint: disable=g-import-not-at-top
  from experiments import main as cli  # pylint: disable=g-import-not-at-top
  for error in (DatasetNotPreparedError, InceptionWeightsNotFoundError, UnknownComponentError):
    assert issubclass(error, cli.USER_ERRORS), error
