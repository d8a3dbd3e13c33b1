"""The acceleration family's and studies' bad input: one line, exit 2, nothing written."""
import os

import pytest

from experiments import acceleration_studies
from tests.test_cli_fuzz import _assert_refused, _run

DEEDIFF = "--config=configs/acceleration/deediff.py:tiny"
PRUNER = "--config=configs/acceleration/ld_pruner.py:tiny"

CASES = [
    (DEEDIFF, ("--config.eval.thresholds=(0.0,1.5)",), "threshold must be in [0, 1]"),
    (DEEDIFF, ("--config.sample.threshold=-0.1",), "threshold must be in [0, 1]"),
    (DEEDIFF, ("--config.method.ratio=0.3",), "the config has no key method.ratio"),
    (DEEDIFF, ("--config.source.workdir={missing}",), "source.workdir="),
    (PRUNER, ("--config.model.mlp_ratio=0.0",), "model.mlp_ratio"),
    (PRUNER, ("--config.model.depth=0",), "model.depth"),
    (PRUNER, ("--config.method.score=fisher",), "method.score='fisher'"),
    (PRUNER, ("--config.method.calibration_samples=1",), "method.calibration_samples"),
]


@pytest.mark.parametrize("config, overrides, text", CASES,
                         ids=[f"{c[0].split('/')[-1]} {' '.join(c[1])}" for c in CASES])
def test_bad_acceleration_value_is_refused_before_the_workdir(tmp_path, capfd, config,
                                                              overrides, text):
  workdir = str(tmp_path / "run")
  overrides = [o.format(missing=str(tmp_path / "none")) for o in overrides]
  code, output = _run([config, f"--workdir={workdir}", *overrides], capfd)
  _assert_refused(code, output, 2, text)
  assert not os.path.exists(workdir)


@pytest.mark.parametrize("flags, text", [
    (("--strengths=-1",), "reflection strength must be a finite number >= 0"),
    (("--strengths=inf",), "reflection strength must be a finite number >= 0"),
    (("--interval=0.6,0.2",), "must satisfy 0 <= t_start <= t_end <= 1"),
    (("--interval=0.5",), "--interval takes two times"),
    (("--strengths=high",), "--strengths takes comma-separated numbers"),
])
def test_bad_w2sd_strength_or_window_is_refused_in_one_line(tmp_path, capfd, flags, text):
  workdir = tmp_path / "run"
  code = acceleration_studies.main(["w2sd", f"--workdir={workdir}", *flags])
  out, err = capfd.readouterr()
  _assert_refused(code, out + err, 2, text)
  assert not workdir.exists()
