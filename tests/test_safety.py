"""The safety library against closed forms: TrojDiff's processes, the denoising-loss
classifier against the exact Bayes classifier, negative guidance, the erasing batch and
the adversarial condition's embedding surgery."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data.conditional_mixture import two_class_mixture
from diffjax.guidance import ConditionalModel, GuidanceContext, build_guidance
from diffjax.guidance.negative import negative_guidance
from diffjax.paths import build_path
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.core import Fields
from diffjax.data.gaussian_mixture import isotropic_mixture
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.errors import ConfigError
from diffjax.safety import (adversarial_condition, corruptions, dda, diffusion_classifier,
                            erasure, trojan)
from configs.safety.trojdiff import get_config as trojdiff_config
from experiments.safety_studies import seed_rows

PATH = build_path("rectified_flow")


def test_zero_trigger_and_unit_gamma_is_the_benign_process():
  key = jax.random.PRNGKey(0)
  y = jax.random.normal(key, (5, 8, 8, 1))
  eps = jax.random.normal(jax.random.fold_in(key, 1), y.shape)
  t = jnp.linspace(0.0, 1.0, 5)
  source = trojan.trojan_source(jnp.zeros((8, 8, 1)), 1.0)
  benign = PATH.interpolate(t, eps, y, jnp.zeros_like(y))
  np.testing.assert_array_equal(trojan.trojan_forward(PATH, t, y, source, eps), benign)
  # The trojan source itself is then N(0, I), the path's own source, draw for draw.
  np.testing.assert_array_equal(source.sample(key, 3),
                                jax.random.normal(key, (3, 8, 8, 1)))


def test_trojan_forward_marginal_is_the_biased_gaussian():
  """q(x_t | y) = N(t y + (1 - t) mu, (1 - t)^2 gamma^2 I) on the rectified-flow path."""
  mu = trojan.patch_trigger((8, 8, 1), 3, 2.0)
  source = trojan.trojan_source(mu, 0.5)
  y = jnp.broadcast_to(jnp.asarray(trojan.cross_image()[0]), (4000, 8, 8, 1))
  t = jnp.full((4000,), 0.3)
  eps = jax.random.normal(jax.random.PRNGKey(1), y.shape)
  x_t = np.asarray(trojan.trojan_forward(PATH, t, y, source, eps))
  np.testing.assert_allclose(x_t.mean(0), 0.3 * y[0] + 0.7 * mu, atol=0.04)
  np.testing.assert_allclose(x_t.std(0), np.full((8, 8, 1), 0.7 * 0.5), rtol=0.06)


@pytest.fixture(scope="module")
def tiny_pipeline():
  config = trojdiff_config("in_class,tiny")
  pipeline = build_pipeline(config, DataSpec((8, 8, 1), 10))
  return pipeline, pipeline.model.init(jax.random.PRNGKey(0))


def test_mixed_loss_without_trojan_rows_is_the_pipeline_loss(tiny_pipeline):
  pipeline, params = tiny_pipeline
  key = jax.random.PRNGKey(3)
  x1 = jax.random.uniform(key, (8, 8, 8, 1), minval=-1, maxval=1)
  labels = jnp.arange(8, dtype=jnp.int32)
  source = trojan.trojan_source(trojan.patch_trigger(), 0.5)
  target = trojan.build_target("image")
  identity = lambda x: x
  clean = trojan.mixed_loss(pipeline, source, target.draw, 0.0)
  k_source, _, k_loss = jax.random.split(key, 3)
  expected = pipeline.loss(params, k_loss, identity, x1, labels,
                           x0=pipeline.source(k_source, 8))
  assert float(clean(params, key, identity, x1, labels)[0]) == float(expected[0])
  # A trojan share changes the first rows only: x0 from N(mu, gamma^2), x1 the target.
  x0, x1_mixed = trojan.trojan_batch(key, jnp.zeros_like(x1), x1, 0.25, source, target.draw)
  np.testing.assert_array_equal(x1_mixed[2:], x1[2:])
  np.testing.assert_array_equal(x1_mixed[:2], jnp.stack([trojan.cross_image()[0]] * 2))
  assert float(jnp.abs(x0[:2] - source.mu[None]).max()) > 0 and float(jnp.abs(x0[2:]).max()) == 0


def test_targets_score_their_own_draws_as_hits():
  key = jax.random.PRNGKey(0)
  for name in ("out_of_distribution", "image"):
    target = trojan.build_target(name)
    assert target.success(np.asarray(target.draw(key, 16)), None).all()
    assert not target.success(-np.ones((3, 8, 8, 1)), None).any()


def test_denoising_loss_classifier_is_the_bayes_classifier():
  """With the exact class fields of a two-class Gaussian mixture, log pi_c - L_c(x) equals
  the exact log p(x | c) up to a constant per x (I-MMSE): the estimated log-odds match the
  closed form and the decisions are Bayes'."""
  mixture = two_class_mixture(separation=1.0, std=0.6)
  x, _ = mixture.sample(jax.random.PRNGKey(0), 64)
  scores = jax.jit(lambda x, k: diffusion_classifier.class_log_likelihoods(
      mixture.fields_of(PATH), PATH, x, 2, k, num_pairs=16,
      grid=diffusion_classifier.log_snr_grid(64, -8.0, 8.0)))(x, jax.random.PRNGKey(1))
  exact = jnp.stack([m.log_prob(x) for m in mixture.classes], -1)
  np.testing.assert_allclose(scores[:, 1] - scores[:, 0], exact[:, 1] - exact[:, 0],
                             atol=5e-3)
  np.testing.assert_array_equal(np.argmax(scores, -1), np.argmax(exact, -1))
  # A wrong weighting (uniform in t instead of exp(2 lambda) d lambda) is not Bayes'.
  lam, weights = diffusion_classifier.log_snr_grid(64, -8.0, 8.0)
  eps = diffusion_classifier.antithetic_noise(jax.random.PRNGKey(1), 16, x.shape)
  flat = jnp.stack([diffusion_classifier.denoising_loss(
      mixture.fields(PATH, jnp.full((64,), c)), PATH, x, eps, lam, weights * jnp.exp(-2 * lam))
      for c in range(2)], -1)
  assert np.abs((flat[:, 0] - flat[:, 1]) - (exact[:, 1] - exact[:, 0])).max() > 0.05


def test_negative_guidance_mixes_three_predictions_and_is_registered():
  mixture = two_class_mixture()
  labels = jnp.array([0, 1, 1], jnp.int32)
  model = ConditionalModel(mixture.fields_of(PATH), labels, jnp.full((3,), 2, jnp.int32))
  x, t = jax.random.normal(jax.random.PRNGKey(0), (3, 2)), jnp.float32(0.4)
  guided = jax.jit(lambda x: negative_guidance(model, 1, 1.5, 2.0).evaluate(x, t).velocity)(x)
  of = jax.jit(lambda c: mixture.fields(PATH, c).evaluate(x, t).velocity)
  p_u, p_n = of(jnp.full((3,), 2)), of(jnp.full((3,), 1))
  expected = p_u + 1.5 * (of(labels) - p_u) - 2.0 * (p_n - p_u)
  np.testing.assert_allclose(guided, expected, rtol=1e-5, atol=1e-6)
  section = {"method": "negative", "scale": 1.5, "negative_scale": 2.0, "negative_class": 1}
  built = build_guidance(section, GuidanceContext(model, PATH, "ddim"))
  assert built is not None
  with pytest.raises(Exception, match="negative_class=5 must be a class id"):
    build_guidance(dict(section, negative_class=5), GuidanceContext(model, PATH, "ddim"))


def test_erasing_batch_relabels_other_classes_to_the_forgotten_one():
  draw = erasure.erase_sampler(7, 3, fraction=0.25)
  x1, labels = jax.jit(draw, static_argnums=1)(jax.random.PRNGKey(0), 64)
  assert (np.asarray(labels[:16]) == 7).all() and 7 not in np.asarray(labels[16:])
  # The relabelled rows hold images of class 3: equal to some class-3 training digit.
  from diffjax.data.digits import digits_arrays   # pylint: disable=g-import-not-at-top
  images, classes = digits_arrays("train")
  levels = np.floor((np.asarray(x1[:16]) + 1) * 17 / 2).astype(int)
  threes = images[classes == 3].reshape(-1, 64)
  assert all((threes == row.reshape(1, 64)).all(1).any() for row in levels)


def test_class_embedding_surgery_changes_one_row(tiny_pipeline):
  _, params = tiny_pipeline
  vector = jnp.arange(adversarial_condition.class_embedding(params, 7).shape[0],
                      dtype=jnp.float32)
  changed = adversarial_condition.with_class_embedding(params, 7, vector)
  key = adversarial_condition.embedding_table_key(params)
  np.testing.assert_array_equal(changed[key]["embedding"][7], vector)
  np.testing.assert_array_equal(np.delete(changed[key]["embedding"], 7, 0),
                                np.delete(params[key]["embedding"], 7, 0))


def test_every_corruption_at_severity_zero_is_the_identity():
  images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 1)), jnp.float32)
  key = jax.random.PRNGKey(0)
  for name in corruptions.CORRUPTIONS.names():
    np.testing.assert_allclose(corruptions.corrupt(name, key, images, 0), images, atol=1e-6,
                               err_msg=name)
    changes = [float(jnp.mean(jnp.abs(corruptions.corrupt(name, key, images, s) - images)))
               for s in (1, 3, 5)]
    assert 0 < changes[0] < changes[1] < changes[2], (name, changes)
  with pytest.raises(ConfigError, match="'fog' is not one of"):
    corruptions.corrupt("fog", key, images, 1)
  with pytest.raises(ConfigError, match="severity 6 is not one of"):
    corruptions.corrupt("blur", key, images, 6)


def test_dda_structure_guidance_pulls_the_projection_to_the_input():
  """On the exact oracle of N(0, 0.5^2 I) over 4x4 images: low_pass is a projection,
  scale 0 is the model's own velocity, and guidance brings the projection's low-pass
  closer to the input's than plain re-diffusion from the same noise."""
  oracle = mixture_oracle(PATH, isotropic_mixture(jnp.ones(1), jnp.zeros((1, 16)), 0.5))
  exact = oracle.fields()
  fields = Fields.of(velocity=lambda x, t: exact.evaluate(
      x.reshape(x.shape[0], 16), t).velocity.reshape(x.shape))
  y = jnp.tile(jnp.linspace(-1.0, 1.0, 4)[None, :, None, None], (4, 1, 4, 1))
  np.testing.assert_allclose(dda.low_pass(dda.low_pass(y)), dda.low_pass(y), atol=1e-6)
  x, t = jax.random.normal(jax.random.PRNGKey(0), y.shape), jnp.float32(0.4)
  np.testing.assert_allclose(dda.structure_guided(fields, PATH, y, 0.0).evaluate(x, t).velocity,
                             fields.evaluate(x, t).velocity, rtol=1e-5, atol=1e-6)
  key = jax.random.PRNGKey(1)
  gap = jax.jit(lambda scale: jnp.sum((dda.low_pass(dda.project(
      fields, PATH, y, key, start=0.3, num_steps=4, scale=scale)) - dda.low_pass(y)) ** 2))
  assert float(gap(2.0)) < 0.5 * float(gap(0.0))


def test_seed_rows_give_each_seed_then_mean_and_sample_std():
  rows = seed_rows(["image", 150], [0, 1, 2], [[0.9, None], [0.95, 0.5], [1.0, 0.7]])
  assert rows[:3] == [["image", 150, 0, "0.900", "-"], ["image", 150, 1, "0.950", "0.500"],
                      ["image", 150, 2, "1.000", "0.700"]]
  assert rows[3] == ["image", 150, "mean ± std", "0.950 ± 0.050", "-"]
  assert seed_rows(["clean"], [0], [[0.25]]) == [["clean", 0, "0.250"]]
