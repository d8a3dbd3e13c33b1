"""W2SD as a config of the acceleration family (configs/acceleration/w2sd.py): with weak =
strong it is the plain sampler exactly through the command line, the workdir stores the
pair as loaded, and bad input is refused in one line, exit 2, nothing written."""
import dataclasses
import json

import pytest

from configs.distillation import teacher as teacher_config
from configs.guidance import digits as digits_config
from diffjax import runs
from diffjax.train import train
from experiments import guidance, toy2d
from tests.helpers import assert_trees_equal
from tests.test_cli_fuzz import _assert_refused, _run

W2SD = "--config=configs/acceleration/w2sd.py:tiny"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  """A tiny digits DiT run (checkpoints at steps 2 and 4; no evaluation) and a tiny moons
  run (data of shape (2,))."""
  root = tmp_path_factory.mktemp("sources")
  config = digits_config.get_config("tiny")
  config.train.update(num_steps=4, steps_per_call=2, checkpoint_every=2, eval_every=0,
                      log_every=0)
  task = dataclasses.replace(guidance.build_guided_images(config),
                             evaluate=lambda params, key: ({}, {}))
  train(config, str(root / "digits"), task)
  moons = teacher_config.get_config("moons,tiny")
  train(moons, str(root / "moons"), toy2d.build_task(moons))
  return {"digits": str(root / "digits"), "moons": str(root / "moons")}


def test_w2sd_config_with_weak_equal_to_strong_is_the_plain_sampler(tmp_path, capfd,
                                                                     sources):
  workdir = tmp_path / "w2sd"
  code, output = _run([W2SD, f"--workdir={workdir}",
                       f"--config.source.workdir={sources['digits']}"], capfd)
  assert code == 0, output
  record = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()
            if "digits_frechet_proxy_strong" in line][-1]
  assert record["strong_step"] == record["weak_step"] == 4
  assert record["rms_to_strong_w2sd_l1"] == 0.0
  assert record["digits_frechet_proxy_w2sd_l1"] == record["digits_frechet_proxy_strong"]
  # The reflections ran (2 evaluations per reflected step) and changed nothing.
  assert record["nfe_w2sd_l1"] > record["nfe_strong"] == 4
  stored = runs.load(str(workdir), use_ema=False).params
  source = runs.load(sources["digits"]).params
  assert_trees_equal(stored["strong"], source)
  assert_trees_equal(stored["weak"], source)


CASES = [
    (("--config.method.strengths=(-1.0,)",), "method.strengths=-1.0 is out of range"),
    (("--config.method.strengths=(0.5,1e999)",), "must be a finite number >= 0"),
    (("--config.method.interval=(0.6,0.2)",), "must satisfy 0 <= t_start <= t_end <= 1"),
    (("--config.method.interval=(0.5,)",), "must be two times"),
    (("--config.method.interval=(0.0,1.5)",), "method.interval"),
    (("--config.method.weak_step=3",), "method.weak_step=3 of source.workdir="),
    (("--config.method.weak_workdir={moons}",), "models data of shape (2,)"),
    (("--config.method.weak_workdir={missing}",), "does not exist"),
]


@pytest.mark.parametrize("overrides, text", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_w2sd_value_is_refused_before_the_workdir(tmp_path, capfd, sources, overrides,
                                                      text):
  workdir = tmp_path / "run"
  paths = dict(sources, missing=str(tmp_path / "none"))
  code, output = _run([W2SD, f"--workdir={workdir}",
                       f"--config.source.workdir={sources['digits']}",
                       *[o.format(**paths) for o in overrides]], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
