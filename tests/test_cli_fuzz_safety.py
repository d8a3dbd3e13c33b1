"""The safety family's bad input (trojan triggers, forgotten classes, digits-C corruptions
and severities): refused by the
command line with one line, exit 2, before the workdir is touched (and before any base
run is read)."""
import numpy as np
import pytest

from tests.test_cli_fuzz import _assert_refused, _run

TROJ = "--config=configs/safety/trojdiff.py:in_class,tiny"
ERASE = "--config=configs/safety/erase.py:tiny"
ATTACK = "--config=configs/safety/unlearn_attack.py:run,tiny"
SDA = "--config=configs/safety/sda.py:tiny"


@pytest.fixture(scope="module")
def triggers(tmp_path_factory):
  root = tmp_path_factory.mktemp("triggers")
  np.save(root / "wrong.npy", np.ones((4, 4, 1), np.float32))
  (root / "text.npy").write_text("not an array")
  return {"wrong": str(root / "wrong.npy"), "text": str(root / "text.npy"),
          "missing": str(root / "missing.npy")}


CASES = [
    (TROJ, ("--config.attack.trigger_file={wrong}",), "has shape (4, 4, 1)"),
    (TROJ, ("--config.attack.trigger_file={text}",), "is not a readable .npy array"),
    (TROJ, ("--config.attack.trigger_file={missing}",), "is not a readable .npy array"),
    (TROJ, ("--config.attack.trigger_size=9",), "attack.trigger_size=9 does not fit"),
    (TROJ, ("--config.attack.gamma=1.5",), "attack.gamma=1.5 must be in (0, 1]"),
    (TROJ, ("--config.attack.target_class=10",), "attack.target_class=10 is not a digits"),
    (TROJ, ("--config.attack.target=hello_kitty",), "attack.target='hello_kitty' is not one"),
    (TROJ, ("--config.attack.fraction=1.0",), "attack.fraction=1.0 is out of range"),
    (ERASE, ("--config.erase.forget_class=10",), "erase.forget_class=10 is not a digits"),
    (ERASE, ("--config.erase.forget_class=-1",), "erase.forget_class=-1 is not a digits"),
    (ERASE, ("--config.erase.override_class=7",), "is the forgotten class"),
    (ERASE, ("--config.erase.override_class=12",), "erase.override_class=12 is not a digits"),
    (ATTACK, ("--config.attack.forget_class=11",), "attack.forget_class=11 is not a digits"),
    (ATTACK, ("--config.subject.kind=lora",), "subject.kind='lora' is not one"),
    (ATTACK, ("--config.subject.workdir={missing}",), "does not exist"),
    (SDA, ("--config.eval.corruptions=('fog',)",), "eval.corruptions='fog' is not one"),
    (SDA, ("--config.eval.severities=(0,6)",), "eval.severities=6 is out of range"),
    (SDA, ("--config.eval.severities=(-1,)",), "eval.severities=-1 is out of range"),
    (SDA, ("--config.dda.start=1.0",), "dda.start=1.0 is out of range"),
]


@pytest.mark.parametrize("config, overrides, text", CASES,
                         ids=[f"{c[0].split('/')[-1]} {' '.join(c[1])}" for c in CASES])
def test_bad_safety_value_is_refused_before_the_workdir(tmp_path, capfd, triggers, config,
                                                       overrides, text):
  workdir = tmp_path / "run"
  argv = [config, f"--workdir={workdir}"] + [o.format(**triggers) for o in overrides]
  code, output = _run(argv, capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
