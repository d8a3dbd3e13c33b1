"""The distribution-matching methods' bad input (f_distill, dmd, disback, sfd): refused by
the command line with one line, exit 2, before the workdir is touched."""
import pytest

from configs.distillation import teacher as teacher_config
from diffjax.train import train
from experiments import toy2d
from tests.test_cli_fuzz import _assert_refused, _run

F_DISTILL = "--config=configs/distillation/f_distill.py:imbalanced,tiny"
F_DIGITS = "--config=configs/distillation/f_distill.py:digits,tiny"
DISBACK = "--config=configs/distillation/disback.py:imbalanced,tiny"
SFD = "--config=configs/distillation/sfd.py:two_class,tiny"
SFD_DIGITS = "--config=configs/distillation/sfd.py:digits,tiny"


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
  """A finished tiny moons teacher: a trained run on data of shape (2,)."""
  finished = str(tmp_path_factory.mktemp("teachers") / "moons")
  config = teacher_config.get_config("moons,tiny")
  train(config, finished, toy2d.build_task(config))
  return {"finished": finished}


CASES = [
    (F_DISTILL, ("--config.method.divergence=kl",),
     "method.divergence='kl' is not a registered f-divergence; valid: forward_kl"),
    (F_DISTILL, ("--config.method.feature_layer=Dense_9",),
     "feature_layer='Dense_9' is not a layer of the fake score network"),
    (F_DISTILL, ("--config.method.time_weight=snr",), "method.time_weight='snr'"),
    (F_DISTILL, ("--config.method.t_min=0.9", "--config.method.t_max=0.5"),
     "must be below method.t_max"),
    (F_DISTILL, ("--config.method.generator=teacher",), "needs a trained teacher run"),
    (F_DISTILL, ("--config.method.temperature=2.0",), "has no key method.temperature"),
    (F_DIGITS, ("--config.teacher.workdir={finished}",), "data of shape (2,)"),
    (DISBACK, ("--config.method.fit_steps=0",), "an oracle teacher has no network"),
    (DISBACK, ("--config.method.degrade_steps=1",), "gives no step to each of the 2 nodes"),
    (SFD, ("--config.method.forget_class=2",),
     "method.forget_class=2 is out of range: the teacher has 2 classes (0..1)"),
    (SFD, ("--config.method.override_class=0",), "must be another class than"),
    (SFD, ("--config.model.num_classes=0",), "SFD forgets one class"),
    (SFD_DIGITS, ("--config.method.forget_class=10",), "method.forget_class=10 is out of range"),
    (SFD_DIGITS, ("--config.teacher.workdir={finished}",), "data of shape (2,)"),
]


@pytest.mark.parametrize("config, overrides, text", CASES,
                         ids=[f"{c[0].split('/')[-1]} {' '.join(c[1])}" for c in CASES])
def test_bad_matching_value_is_refused_before_the_workdir(tmp_path, capfd, teachers, config,
                                                         overrides, text):
  workdir = tmp_path / "run"
  argv = [config, f"--workdir={workdir}"] + [o.format(**teachers) for o in overrides]
  code, output = _run(argv, capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
