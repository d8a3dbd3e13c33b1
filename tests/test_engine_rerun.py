"""A run that fails before its first checkpoint leaves nothing a rerun keeps: the corrected
command starts from scratch in the same workdir, as the failure's message says."""
import json
import os

from experiments import main as cli

SHORT = ["--config=configs/quickstart.py:tiny", "--config.train.num_steps=20",
         "--config.train.steps_per_call=10", "--config.train.eval_every=0",
         "--config.train.checkpoint_every=20"]


def test_a_corrected_rerun_after_a_failure_before_the_first_checkpoint(tmp_path, capfd):
  workdir = str(tmp_path / "run")
  assert cli.cli(["main", *SHORT, f"--workdir={workdir}",
                  "--config.optim.learning_rate=1e30", "--config.optim.grad_clip=0"]) == 1
  failure = capfd.readouterr().err
  assert "No checkpoint was saved yet, so a rerun starts from scratch" in failure
  assert os.path.exists(os.path.join(workdir, "config.json"))
  assert cli.cli(["main", *SHORT, f"--workdir={workdir}"]) == 0
  rerun = capfd.readouterr().err
  assert ("holds no checkpoint of its earlier run (it stopped before its first one), whose "
          "config differed (optim.grad_clip: 0.0 -> 1.0; optim.learning_rate: 1e+30 -> "
          "0.001): starting from scratch with the given config.") in rerun
  assert "Finished: step 20" in rerun
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["optim"]["learning_rate"] == 0.001
  # With a checkpoint the run has data: another config is refused, nothing is touched.
  assert cli.cli(["main", *SHORT, f"--workdir={workdir}",
                  "--config.optim.learning_rate=0.01"]) == 2
  assert "holds a run with a different config: optim.learning_rate" in capfd.readouterr().err
