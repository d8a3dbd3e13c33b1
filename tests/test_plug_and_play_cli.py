"""The plug-and-play configs end to end on a tiny trained digits prior (Steered Diffusion
against DPS, COW against SDEdit, PPAP's experts; DFM needs none), and their bad input
refused in one line, exit 2, nothing written."""
import os

import numpy as np
import pytest

import experiments
from configs.adaptation import cow_digits, dfm_digits, ppap_digits, steered_digits
from configs.images import digits
from diffjax.train.workdir import read_metrics
from experiments import main as cli


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
  """A digits DiT trained 2 steps (a prior for the studies' plumbing, not their figures)."""
  config = digits.get_config("tiny")
  config.model.update(hidden_dim=16, depth=1, num_heads=2)
  config.path.name = "rectified_flow"
  config.train.update(num_steps=2, steps_per_call=2, log_every=2, eval_every=2,
                      checkpoint_every=2)
  config.eval.update(bpd_examples=0, num_samples=4)
  workdir = str(tmp_path_factory.mktemp("prior") / "run")
  experiments.run(config, workdir)
  return workdir


def test_steered_and_cow_tiny_restore_and_score(prior, tmp_path):
  config = steered_digits.get_config("tiny")
  config.eval.update(prior_workdir=prior, degradations=("super_resolution",),
                     methods=("steered_learned",))
  experiments.run(config, str(tmp_path / "steered"))
  record = read_metrics(str(tmp_path / "steered"))[-1]
  for name in ("observed", "steered_learned"):
    assert np.isfinite(record[f"psnr_super_resolution_{name}_mean_of_draws"]), name
    assert np.isfinite(record[f"frechet_proxy_super_resolution_{name}"]), name
  config = cow_digits.get_config("tiny")
  config.eval.update(prior_workdir=prior, sdedit_starts=(0.5,))
  experiments.run(config, str(tmp_path / "cow"))
  record = read_metrics(str(tmp_path / "cow"))[-1]
  assert record["patch_psnr_cow"] > 100   # The seed re-imposed at t = 1: exact.
  assert record["patch_psnr_sdedit_t0.5"] < 60
  assert os.path.exists(os.path.join(tmp_path, "cow", "plots", "cow_0000002.png"))


def test_colourisation_restores_three_stacked_digits_from_their_luma(prior, tmp_path):
  config = steered_digits.get_config("colourisation,tiny")
  config.eval.update(prior_workdir=prior, methods=("dps", "steered_learned"), num_restored=2)
  experiments.run(config, str(tmp_path / "colour"))
  record = read_metrics(str(tmp_path / "colour"))[-1]
  for name in ("observed", "prior", "dps", "steered_learned"):
    assert np.isfinite(record[f"psnr_channel_mixing_{name}_all_draws"]), name
    assert np.isfinite(record[f"frechet_proxy_channel_mixing_{name}"]), name
  assert os.path.exists(os.path.join(tmp_path, "colour", "plots",
                                     "restored_channel_mixing_0000004.png"))


def test_ppap_tiny_transfers_and_guides(prior, tmp_path):
  config = ppap_digits.get_config("tiny")
  config.eval.prior_workdir = prior
  experiments.run(config, str(tmp_path / "ppap"))
  record = read_metrics(str(tmp_path / "ppap"))[-1]
  for kind in ("experts", "clean"):
    assert 0.0 <= record[f"accuracy_{kind}_s1"] <= 1.0
  assert 0.0 <= record["teacher_agreement_t0.5"] <= 1.0


def test_dfm_tiny_trains_through_the_forward_model_and_samples(tmp_path):
  experiments.run(dfm_digits.get_config("tiny"), str(tmp_path / "dfm"))
  record = read_metrics(str(tmp_path / "dfm"))[-1]
  assert np.isfinite(record["frechet_proxy_samples"])
  assert np.isfinite(record["frechet_proxy_observations"])


@pytest.mark.parametrize("config,flag,message", [
    ("cow_digits", "--config.eval.patch=(6,2,4)", "top=6, left=2) of size 4 is not inside"),
    ("steered_digits", "--config.eval.factor=3", "factor 3 needs an integer factor"),
    ("ppap_digits", "--config.ppap.boundaries=(0.0,0.5)", "increase from 0 to 1"),
    ("steered_digits", "--config.methods.dps.method=cfg", "does not restore"),
    ("steered_digits", "--config.eval.prior_workdir=/nonexistent", "does not exist"),
    ("dfm_digits", "--config.dfm.forward_model=blur", "'blur'"),
])
def test_bad_input_fails_in_one_line_before_the_workdir(prior, tmp_path, capfd, config,
                                                        flag, message):
  workdir = str(tmp_path / "run")
  uses_prior = [f"--config.eval.prior_workdir={prior}"] if config != "dfm_digits" else []
  code = cli.cli(["main", f"--config=configs/adaptation/{config}.py:tiny",
                  f"--workdir={workdir}", *uses_prior, flag])
  # (A repeated flag: the last one wins, so the prior's workdir can be overridden too.)
  out, err = capfd.readouterr()
  lines = [line for line in (out + err).splitlines() if line.startswith("error:")]
  assert code == 2 and len(lines) == 1 and message in lines[0], out + err
  assert not os.path.exists(workdir)
