"""Bad values of the multi-task, DDMI and CausalDiffAE families on the command line: one
line, exit 2, nothing written (a cyclic causal graph, coordinates outside [0, 1]^2)."""
import numpy as np
import pytest

from tests.test_cli_fuzz import _assert_refused, _run

MULTITASK = "--config=configs/datatypes/multitask.py:tiny"
DDMI = "--config=configs/datatypes/ddmi.py:tiny"
CAUSAL = "--config=configs/datatypes/causal_diffae.py:tiny"

CASES = [
    (MULTITASK, "--config.data.modalities=label", "data.modalities='label' is not one of"),
    (MULTITASK, "--config.data.label_scale=0", "data.label_scale=0"),
    (DDMI, "--config.ddmi.channels=(8,)", "must have one entry per level"),
    (DDMI, "--config.eval.resolutions=(0,)", "eval.resolutions"),
    (DDMI, "--config.ddmi.coordinates_file=nowhere.npy", "nowhere.npy cannot be read"),
    (CAUSAL, "--config.causal.edges=('size->brightness','brightness->size')",
     "cycle size -> brightness -> size; give a DAG"),
    (CAUSAL, "--config.causal.edges=('size->colour',)", "causal edge 'size->colour'"),
    (CAUSAL, "--config.causal.inversion_steps=0", "causal.inversion_steps=0"),
]


@pytest.mark.parametrize("config, override, text", CASES,
                         ids=[f"{c[0].split('/')[-1]} {c[1]}" for c in CASES])
def test_bad_value_is_refused_before_the_workdir(tmp_path, capfd, config, override, text):
  workdir = tmp_path / "run"
  code, output = _run([config, f"--workdir={workdir}", override], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()


def test_coordinates_outside_the_domain_are_refused(tmp_path, capfd):
  path = tmp_path / "points.npy"
  np.save(path, np.array([[0.2, 0.4], [0.5, 1.5]]))
  workdir = tmp_path / "run"
  code, output = _run([DDMI, f"--workdir={workdir}",
                       f"--config.ddmi.coordinates_file={path}"], capfd)
  _assert_refused(code, output, 2, "outside the domain [0, 1]^2")
  assert not workdir.exists()
