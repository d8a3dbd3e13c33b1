"""Adapted runs end to end through the engine: a few-shot fine-tune and a ProSpect
spectrum of a tiny trained digits run, each loaded back with `diffjax.runs.load` like any
trained run (the few-shot run with the source's pipeline around its adapted network)."""
import json
import os

import jax
import numpy as np

import experiments
from configs.adaptation import few_shot, prospect
from diffjax import runs
# The fixture `prior`: a class-conditional digits DiT trained 2 steps.
from tests.test_plug_and_play_cli import prior  # pylint: disable=unused-import


def test_a_few_shot_run_loads_as_the_source_pipeline_with_adapted_parameters(prior,
                                                                             tmp_path):
  config = few_shot.get_config("plain,tiny")
  config.source.workdir = prior
  workdir = str(tmp_path / "few_shot")
  experiments.run(config, workdir)
  with open(os.path.join(workdir, "run.json")) as f:
    assert json.load(f)["adapted_from"] == prior
  base, adapted = runs.load(prior), runs.load(workdir)
  assert adapted.finished and adapted.step == 4
  assert adapted.config.experiment == "few_shot"
  assert adapted.spec == base.spec and adapted.pipeline.num_classes == 10
  assert adapted.config.to_dict() != base.config.to_dict()
  moved = [float(np.max(np.abs(a - b))) for a, b in
           zip(jax.tree.leaves(adapted.params), jax.tree.leaves(base.params))]
  assert jax.tree.structure(adapted.params) == jax.tree.structure(base.params)
  assert max(moved) > 0     # four Adam steps moved the network
  key, labels = jax.random.PRNGKey(0), np.arange(3)
  x = adapted.sample(key, 3, labels)
  assert x.shape == (3, 8, 8, 1) and np.all(np.isfinite(x))
  # The same pipeline: with the source's parameters it draws the source's samples.
  np.testing.assert_array_equal(
      adapted.pipeline.generate(base.params, key, 3, labels).x, base.sample(key, 3, labels))
  # Adapting the adapted run again records the original source's pipeline.
  assert runs.adapted_record(adapted)["pipeline_config"] == base.config.to_dict()
  assert adapted.pipeline_config.to_dict() == base.config.to_dict()


def test_a_prospect_run_loads_its_spectra(prior, tmp_path):
  config = prospect.get_config("tiny")
  config.source.workdir = prior
  workdir = str(tmp_path / "prospect")
  experiments.run(config, workdir)
  run = runs.load(workdir)
  assert run.finished and run.pipeline is None and run.config.experiment == "prospect"
  shapes = [leaf.shape for leaf in jax.tree.leaves(run.params)]
  assert shapes and all(s[-2] == len(config.method.intervals) for s in shapes), shapes
