"""CausalDiffAE: the causal graph and its cycles, the additive-noise SCM's abduction and
intervention against closed forms, counterfactual decoding (an intervention on a root with
an identity mechanism equals direct conditioning), the scene's true mechanism, and the
family end to end on its :tiny config."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from configs.datatypes import causal_diffae
from diffjax import causal
from diffjax.data.causal_scene import (EDGES, FACTORS, causal_scene, render_scene,
                                       scene_counterfactual)
from diffjax.errors import ConfigError
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.train.workdir import read_metrics

GRAPH = causal.causal_graph(("a", "b", "c", "d"), ("a->b", "b->c"))


def test_graph_orders_parents_first_and_finds_descendants():
  graph = causal.causal_graph(("c", "b", "a"), ("b->c", "a->b"))
  assert graph.order == (2, 1, 0)
  assert graph.descendants(2) == (1, 0) and graph.descendants(0) == ()
  assert GRAPH.descendants(0) == (1, 2) and GRAPH.descendants(3) == ()


@pytest.mark.parametrize("edges,message", [
    (("a->b", "b->c", "c->a"), r"has a cycle a -> b -> c -> a; give a DAG"),
    (("a->a",), r"has a cycle a -> a"),
    (("a=>b",), r"causal edge 'a=>b' must read 'parent->child'"),
    (("a->z",), r"factors among a, b, c"),
])
def test_bad_graphs_fail_in_one_line(edges, message):
  with pytest.raises(ConfigError, match=message) as error:
    causal.causal_graph(("a", "b", "c"), edges)
  assert "\n" not in str(error.value)


def test_a_cyclic_config_is_refused_before_the_workdir(tmp_path):
  config = causal_diffae.get_config("tiny")
  config.causal.edges = ("size->brightness", "brightness->size")
  with pytest.raises(ConfigError, match="cycle size -> brightness -> size"):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_fitted_mechanisms_recover_a_polynomial_scm_and_propagate():
  rng = np.random.default_rng(0)
  a, c, d = rng.normal(size=(3, 500))
  eps_b, eps_c = rng.normal(size=(2, 500)) * 0.1
  b = 0.5 - 1.5 * a + 0.3 * a ** 2 + eps_b
  c = 2.0 * b + c * 0.0 + eps_c
  z = jnp.asarray(np.stack([a, b, c, d], -1), jnp.float32)
  scm = causal.fit_mechanisms(GRAPH, z, degree=2)
  np.testing.assert_allclose(scm.weights[1], [0.5, -1.5, 0.3], atol=0.05)
  np.testing.assert_allclose(scm.weights[2], [0.0, 2.0, 0.0], atol=0.05)
  np.testing.assert_allclose(scm.abduct(z)[:, 0], a, atol=1e-5)   # A root's noise is itself.
  # do(a = a) changes nothing; do(a = v) moves b and c by the mechanisms, keeps d.
  np.testing.assert_allclose(scm.intervene(z, 0, z[:, 0]), z, atol=1e-4)
  cf = scm.intervene(z, 0, 1.0)
  eps = scm.abduct(z)
  b_cf = scm.weights[1] @ np.array([1.0, 1.0, 1.0]) + eps[:, 1]
  np.testing.assert_allclose(cf[:, 1], b_cf, atol=1e-4)
  np.testing.assert_allclose(cf[:, 2], scm.mechanism(cf, 2) + eps[:, 2], atol=1e-4)
  np.testing.assert_array_equal(cf[:, 3], z[:, 3])
  # do(b = v) leaves its parent a alone.
  np.testing.assert_array_equal(scm.intervene(z, 1, 0.0)[:, 0], z[:, 0])


@pytest.fixture(scope="module")
def decoder():
  config = causal_diffae.get_config("tiny")
  pipeline = build_pipeline(config, DataSpec((64,), cond_dim=3))
  params = pipeline.model.init(jax.random.PRNGKey(0))
  # Scale the output layer up so that the untrained velocity field is far from zero.
  last = sorted(k for k in params if k.startswith("Dense_"))[-1]
  params = {**params, last: jax.tree.map(lambda p: 5.0 * p, params[last])}
  return pipeline, params


def test_root_intervention_with_identity_mechanism_equals_direct_conditioning(decoder):
  pipeline, params = decoder
  graph = causal.causal_graph(FACTORS, EDGES)
  identity = causal.AdditiveSCM(graph, (np.zeros(0), np.array([0.0, 1.0]), np.zeros(0)), 1)
  x = jnp.asarray(causal_scene(0, 4)[0].reshape(4, 64))
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
  value = jnp.asarray([0.5, -1.0, 2.0, 0.0])
  noise = causal.invert(pipeline, params, x, z, 8)
  for root, direct in ((0, jnp.stack([value, z[:, 1] + value - z[:, 0], z[:, 2]], -1)),
                       (2, z.at[:, 2].set(value))):
    z_cf = identity.intervene(z, root, value)
    np.testing.assert_allclose(z_cf, direct, atol=1e-6)
    np.testing.assert_allclose(causal.counterfactual(pipeline, params, x, z, z_cf, 8),
                               causal.decode(pipeline, params, noise, direct, 8), atol=1e-5)


def test_inversion_then_decoding_returns_the_factual_image(decoder):
  pipeline, params = decoder
  x = jnp.asarray(causal_scene(0, 4)[0].reshape(4, 64))
  z = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
  noise = causal.invert(pipeline, params, x, z, 32)
  assert float(jnp.abs(noise - x).mean()) > 0.1     # The field does move the images...
  back = causal.decode(pipeline, params, noise, z, 32)
  assert float(jnp.abs(back - x).max()) < 0.02      # ... and the ODE returns them.


def test_scene_counterfactuals_follow_the_true_mechanism():
  images, factors, u = causal_scene(0, 100)
  np.testing.assert_allclose(render_scene(factors), images)
  # The brightest pixel lies within half a pixel of the blob's centre in each axis.
  peak, size, brightness = images.max((1, 2, 3)) + 1, factors[:, 0], factors[:, 1]
  assert np.all(peak <= 2 * brightness + 1e-6)
  assert np.all(peak >= 2 * brightness * np.exp(-0.5 / (2 * size ** 2)) - 1e-6)
  cf = scene_counterfactual(factors, u, 0, 1.0)
  np.testing.assert_array_equal(cf[:, 2], factors[:, 2])
  assert np.all(np.abs(cf[:, 1] - factors[:, 1]) > 0) or np.allclose(factors[:, 0], 1.0)
  np.testing.assert_array_equal(scene_counterfactual(factors, u, 1, 0.5)[:, 0], factors[:, 0])


def test_causal_diffae_tiny_reports_every_intervention(tmp_path):
  workdir = str(tmp_path / "run")
  experiments.run(causal_diffae.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  for model in ("causal", "baseline"):
    for i in FACTORS:
      for j in FACTORS:
        assert np.isfinite(record[f"error_{model}_do_{i}_{j}"])
  assert record["change_true_do_size_position"] == 0.0
  assert record["change_true_do_size_brightness"] > 0.0
