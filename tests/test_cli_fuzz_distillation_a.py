"""The distillation family's bad input (consistency models, flow maps, teachers): refused by
the command line with one line, exit 2, before the workdir is touched."""
import os
import shutil

import pytest

from configs.distillation import teacher as teacher_config
from diffjax.train import train
from experiments import toy2d
from tests.test_cli_fuzz import _assert_refused, _run

CT = "--config=configs/distillation/consistency_training.py:moons,tiny"
CD = "--config=configs/distillation/consistency_distillation.py:moons,tiny"
CD_DIGITS = "--config=configs/distillation/consistency_distillation.py:digits,tiny"
MEANFLOW = "--config=configs/distillation/meanflow.py:moons,tiny"
SHORTCUT = "--config=configs/distillation/shortcut.py:oracle,tiny"


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
  """A finished tiny moons teacher and an unfinished copy (its last checkpoint gone)."""
  root = tmp_path_factory.mktemp("teachers")
  finished = str(root / "moons")
  config = teacher_config.get_config("moons,tiny")
  train(config, finished, toy2d.build_task(config))
  unfinished = str(root / "unfinished")
  shutil.copytree(finished, unfinished)
  shutil.rmtree(os.path.join(unfinished, "checkpoints", "20"))
  return {"finished": finished, "unfinished": unfinished,
          "missing": str(root / "missing")}


CASES = [
    # Teachers.
    (CD, ("--config.teacher.workdir={missing}",), "does not exist"),
    (CD, ("--config.teacher.workdir={unfinished}",), "is unfinished"),
    (CD_DIGITS, ("--config.teacher.workdir={finished}",), "data of shape (2,)"),
    (CD, ("--config.teacher.kind=none",), "distils a teacher"),
    (CD, ("--config.teacher.kind=oracle", "--config.teacher.mixture=moons"),
     "Unknown teacher mixture 'moons'"),
    (CD, ("--config.teacher.kind=teach",), "teacher.kind='teach' is not one of"),
    (CD, ("--config.teacher.workdir={finished}", "--config.path.name=vp"),
     "teacher run's path"),
    # Methods and their options.
    (CT, ("--config.method.name=consistency",), "Unknown distillation method 'consistency'"),
    (CT, ("--config.method.sigma_min=100.0",), "must be below method.sigma_max"),
    (CT, ("--config.method.distance=l1",), "method.distance='l1' is not one of"),
    (CT, ("--config.path.name=linear",), "needs a Gaussian path"),
    (CD, ("--config.teacher.workdir={finished}", "--config.method.ode_solver=euler_maruyama"),
     "stochastic"),
    (CD, ("--config.teacher.workdir={finished}",
          "--config.method.ode_solver=masked_ancestral"), "is a stochastic sampler"),
    (CD, ("--config.teacher.workdir={finished}", "--config.method.num_levels=1"),
     "method.num_levels=1 is out of range"),
    (MEANFLOW, ("--config.method.velocity=teacher",), "regresses on a teacher's velocity"),
    (MEANFLOW, ("--config.method.ratio=1.5",), "method.ratio=1.5 is out of range"),
    (SHORTCUT, ("--config.method.max_steps=100",), "must be a power of 2"),
    # The family's own keys.
    (CT, ("--config.data.name=mnist",), "data.name='mnist' is not one of"),
    (CT, ("--config.eval.num_steps=(1,0)",), "eval.num_steps=0 is out of range"),
    (CT, ("--config.model.num_classes=3",), "model.num_classes=3"),
]


@pytest.mark.parametrize("config, overrides, text", CASES,
                         ids=[f"{c[0].split('/')[-1]} {' '.join(c[1])}" for c in CASES])
def test_bad_distillation_value_is_refused_before_the_workdir(tmp_path, capfd, teachers,
                                                             config, overrides, text):
  workdir = tmp_path / "run"
  argv = [config, f"--workdir={workdir}"] + [o.format(**teachers) for o in overrides]
  code, output = _run(argv, capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
