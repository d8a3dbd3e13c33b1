"""The safety families end to end on tiny configs: a tiny digits run, its trojaned
fine-tune (loadable as a run), UnlearnDiffAtk under negative guidance, and SDA."""
import json
import os

import pytest

import experiments
from configs.guidance import digits as digits_config
from configs.safety import sda as sda_config
from configs.safety import trojdiff as trojdiff_config
from configs.safety import unlearn_attack as attack_config
from diffjax import runs
from diffjax.train.workdir import read_metrics


@pytest.fixture(scope="module")
def base(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("safety") / "digits")
  experiments.run(digits_config.get_config("tiny"), workdir)
  return workdir


def _run(config, workdir):
  config.lock()
  experiments.run(config, workdir)
  return read_metrics(workdir)[-1]


def test_trojan_fine_tune_is_a_loadable_run(base, tmp_path):
  config = trojdiff_config.get_config("image,tiny")
  config.base.workdir = base
  metrics = _run(config, str(tmp_path / "trojan"))
  assert 0.0 <= metrics["attack_success_rate"] <= 1.0
  assert metrics["benign_frechet_proxy"] > 0
  run = runs.load(str(tmp_path / "trojan"))
  assert run.step == 4 and run.spec.num_classes == 10
  with open(os.path.join(tmp_path / "trojan", "config.json")) as f:
    assert json.load(f)["attack"]["target"] == "image"


def test_attack_on_negative_guidance_and_sda(base, tmp_path):
  config = attack_config.get_config("negative_guidance,tiny")
  config.subject.workdir = base
  metrics = _run(config, str(tmp_path / "attack"))
  assert set(metrics) >= {"forget_share_before_attack", "forget_share_after_attack"}
  config = sda_config.get_config("tiny")
  config.base.workdir = base
  metrics = _run(config, str(tmp_path / "sda"))
  assert {"source_blur0", "dda_blur3", "sda_blur3"} <= set(metrics)
