"""Few-shot adaptation (`diffjax.adaptation`): target styles, time intervals, diversity
metrics against closed forms, DomainStudio's terms, phasic fusing's fixed point, and the
command line's refusals."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs.guidance import digits as digits_config
from diffjax import runs
from diffjax.adaptation import (FEW_SHOT_METHODS, check_intervals, few_shot_context,
                                few_shot_loss, few_shot_set, interval_index,
                                intra_cluster_distance, mean_pairwise_distance)
from diffjax.adaptation.domainstudio import (haar_subbands, high_frequency,
                                             relative_distance_loss,
                                             similarity_distributions)
from diffjax.adaptation.styles import inverted, rotated, thick
from diffjax.errors import ConfigError
from diffjax.image_metrics import DigitsClassifier, DigitsMLP
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.train import create_train_state
from diffjax.train.step import make_train_step, scan_steps
from tests.test_cli_fuzz import _assert_refused, _run


def test_styles():
  x = -np.ones((1, 5, 5, 1), np.float32)
  x[0, 2, 2] = 1.0
  plus = thick(x)[0, ..., 0] > 0
  expected = np.zeros((5, 5), bool)
  expected[2, 1:4] = expected[1:4, 2] = True
  np.testing.assert_array_equal(plus, expected)
  y = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
  np.testing.assert_array_equal(inverted(inverted(y)), y)
  np.testing.assert_array_equal(rotated(rotated(rotated(rotated(y)))), y)
  shots, labels = few_shot_set("thick", 12, seed=0)
  assert shots.shape == (12, 8, 8, 1) and list(labels) == list(range(10)) + [0, 1]
  assert len({s.tobytes() for s in shots}) == 12


def test_intervals_tile_the_unit_interval():
  boundaries = check_intervals(((0.0, 0.3), (0.3, 1.0)), "x")
  np.testing.assert_array_equal(interval_index(jnp.array([0.0, 0.29, 0.3, 0.99, 1.0]),
                                               boundaries), [0, 0, 1, 1, 1])
  for bad, text in [(((0.0, 0.3), (0.4, 1.0)), "gap or overlap"),
                    (((0.0, 0.5), (0.4, 1.0)), "gap or overlap"),
                    (((0.1, 1.0),), "does not cover [0, 1]"),
                    (((0.0, 0.9),), "does not cover [0, 1]"),
                    (((0.0, 0.0), (0.0, 1.0)), "is empty"), ((0.5,), "pairs")]:
    with pytest.raises(ConfigError, match=re_escape(text)):
      check_intervals(bad, "x")


def re_escape(text):
  return "".join("\\" + c if c in "[]()." else c for c in text)


def test_diversity_closed_forms():
  side = 2.0
  triangle = np.array([[0, 0], [side, 0], [side / 2, side * np.sqrt(3) / 2]])
  assert mean_pairwise_distance(triangle) == pytest.approx(side)
  anchors = np.array([[0.0, 0.0], [10.0, 0.0]])
  copies = np.repeat(anchors, 3, axis=0)
  assert intra_cluster_distance(copies, anchors) == 0.0
  # Two clusters: pairs at distance 1 and 3 around their anchors -> mean of 1 and 3.
  spread = np.array([[0.0, 0.5], [0.0, -0.5], [10.0, 1.5], [10.0, -1.5]])
  assert intra_cluster_distance(spread, anchors) == pytest.approx(2.0)


def test_haar_is_orthonormal_and_constant_images_have_no_high_frequency():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 8, 8, 1))
  bands = haar_subbands(x)
  energy = sum(jnp.sum(b ** 2) for b in bands)
  np.testing.assert_allclose(energy, jnp.sum(x ** 2), rtol=1e-5)
  np.testing.assert_allclose(high_frequency(jnp.full((2, 8, 8, 1), 0.7)), 0.0, atol=1e-7)


def test_relative_distance_loss_against_numpy():
  key_a, key_b = jax.random.split(jax.random.PRNGKey(1))
  source = jax.random.normal(key_a, (5, 4, 4, 1))
  adapted = jax.random.normal(key_b, (5, 4, 4, 1))
  p = np.asarray(similarity_distributions(source))
  assert np.allclose(np.diag(p), 0) and np.allclose(p.sum(1), 1)

  def distributions(x):
    f = np.asarray(x, np.float64).reshape(5, -1)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    rows = []
    for i in range(5):
      sims = np.array([f[i] @ f[j] for j in range(5) if j != i])
      rows.append(np.exp(sims) / np.exp(sims).sum())
    return np.array(rows)

  p_s, p_a = distributions(source), distributions(adapted)
  expected = np.mean(np.sum(p_a * np.log(p_a / p_s), axis=1))
  np.testing.assert_allclose(relative_distance_loss(source, adapted), expected, rtol=1e-4)
  np.testing.assert_allclose(relative_distance_loss(source, 3.0 * source), 0.0, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_run():
  """A tiny class-conditional digits DiT on the rectified-flow path (untrained: the
  identities below hold at any parameters), as a `Run`."""
  config = digits_config.get_config("tiny")
  pipeline = build_pipeline(config, DataSpec((8, 8, 1), 10))
  params = pipeline.model.init(jax.random.PRNGKey(0))
  return runs.Run("", config, 0, 0, params, pipeline)


@pytest.fixture(scope="module")
def encoder_parts():
  module = DigitsMLP(feature_dim=16)
  params = module.init(jax.random.PRNGKey(3), jnp.zeros((1, 8, 8, 1)))["params"]
  classifier = DigitsClassifier(params, 16)
  return (lambda x: module.apply({"params": classifier.params}, x)[1],
          np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (20, 8, 8, 1)) * 2 - 1))


def _loss(run, method_name, options, encoder_parts):
  shots, labels = few_shot_set("thick", 6)
  encoder, source_images = encoder_parts
  context = few_shot_context(run, shots, labels, 4, dict(name=method_name, **options),
                             encoder, source_images)
  return few_shot_loss(FEW_SHOT_METHODS.get(method_name), context)


PHASIC_OPTIONS = dict(intervals=((0.0, 0.4), (0.4, 1.0)), ddc_weight=1.0, encoder_seed=1)


def test_phasic_with_both_phases_on_the_source_leaves_the_model_unchanged(tiny_run,
                                                                          encoder_parts):
  loss = _loss(tiny_run, "phasic", dict(PHASIC_OPTIONS, phases=("source", "source")),
               encoder_parts)
  step = make_train_step(loss, optax.adam(1e-3))
  state = create_train_state(lambda _: tiny_run.params, optax.adam(1e-3),
                             jax.random.PRNGKey(0))
  state, metrics = jax.jit(lambda s: scan_steps(step, s, 2))(state)
  np.testing.assert_array_equal(np.asarray(metrics["loss"]), 0.0)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(tiny_run.params)):
    np.testing.assert_array_equal(a, b)
  # A target phase has a loss to move the model, and its direction term is live.
  loss = _loss(tiny_run, "phasic", dict(PHASIC_OPTIONS, phases=("source", "target")),
               encoder_parts)
  value, aux = loss(tiny_run.params, jax.random.PRNGKey(0), None, 0)
  assert float(value) > 0 and float(aux["ddc"]) > 0
  assert 0 < float(aux["target_phase_fraction"]) < 1


def test_domainstudio_adds_its_terms_to_plain_fine_tuning(tiny_run, encoder_parts):
  key = jax.random.PRNGKey(0)
  plain, _ = _loss(tiny_run, "plain", {}, encoder_parts)(tiny_run.params, key, None, 0)
  weights = dict(lambda_img=0.0, lambda_hf=0.0, lambda_hfmse=1.0)
  full, aux = _loss(tiny_run, "domainstudio", weights, encoder_parts)(tiny_run.params, key,
                                                                       None, 0)
  # The same draws as plain fine-tuning, plus the weighted terms; at the source's
  # parameters the relative distances are preserved exactly.
  np.testing.assert_allclose(aux["flow_matching"], plain, rtol=1e-6)
  np.testing.assert_allclose(full, plain + aux["high_frequency_mse"], rtol=1e-5)
  np.testing.assert_allclose(aux["relative_distance"], 0.0, atol=1e-6)
  np.testing.assert_allclose(aux["relative_distance_hf"], 0.0, atol=1e-6)


PHASIC = "--config=configs/adaptation/few_shot.py:phasic,tiny"
DOMAINSTUDIO = "--config=configs/adaptation/few_shot.py:domainstudio,tiny"


@pytest.mark.parametrize("config,overrides,text", [
    (PHASIC, ("--config.train.batch_size=16",),
     "train.batch_size=16 is larger than the few-shot set (target.num_shots=10)"),
    (PHASIC, ("--config.method.phases=('source', 'style')",), "method.phases="),
    (DOMAINSTUDIO, ("--config.method.lambda_hf=-1.0",), "method.lambda_hf=-1.0"),
    (DOMAINSTUDIO, ("--config.train.batch_size=2",), "use 3 or more"),
    (DOMAINSTUDIO, ("--config.target.style=bold",), "target.style"),
    (DOMAINSTUDIO, ("--config.source.workdir=/nonexistent/run",), "does not exist"),
])
def test_bad_input_is_refused_before_the_workdir(tmp_path, capfd, config, overrides, text):
  workdir = str(tmp_path / "run")
  code, output = _run([config, f"--workdir={workdir}", *overrides], capfd)
  _assert_refused(code, output, 2, text)
  assert not os.path.exists(workdir)
