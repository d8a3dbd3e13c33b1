"""The command line, as a user runs it: errors name the bad value and what is valid."""
import os

import pytest

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


@pytest.mark.parametrize("args, message", [
    (["--config.train.no_such_key=1"], "no_such_key"),
    (["--config.train.num_steps=many"], "many"),
    (["--config.model.name=transformerr"], "Unknown model 'transformerr'; valid names are: "),
    (["--config.sample.solver=rk9"], "Unknown sampler 'rk9'; valid names are: "),
    (["--config=configs/quickstart.py:huge"], "Unknown config argument 'huge'"),
])
def test_bad_config_is_refused_with_a_clear_message(tmp_path, args, message):
  workdir = tmp_path / "run"
  result = run_main([TINY, f"--workdir={workdir}", *args])
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not (workdir / "checkpoints").exists()


@pytest.mark.parametrize("missing", ["--config", "--workdir"])
def test_missing_required_flag(tmp_path, missing):
  args = {"--config": TINY, "--workdir": f"--workdir={tmp_path}"}
  del args[missing]
  result = run_main(list(args.values()))
  assert result.returncode != 0
  assert f"Flag {missing} must have a value other than None" in result.stderr


def test_incompatible_workdir_message(tmp_path):
  workdir = str(tmp_path / "run")
  first = run_main([TINY, f"--workdir={workdir}", "--config.train.num_steps=50",
                    "--config.train.eval_every=0"])
  assert first.returncode == 0, first.stderr[-2000:]
  second = run_main([TINY, f"--workdir={workdir}", "--config.model.depth=3"])
  assert second.returncode == 1
  assert "model.depth: 2 (recorded) vs 3 (given)" in second.stderr
  assert "--overwrite" in second.stderr
