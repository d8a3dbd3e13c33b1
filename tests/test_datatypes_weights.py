"""D2NWG's pieces: the fixed flattening of a network (exact reload), per-layer
normalisation, the zoo file and its refusal of mixed architectures, the classifier and
its training, the data-set embedding, and the family end to end on its :tiny config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from diffjax.data.classification_tasks import classification_task, dataset_embedding
from diffjax.data.normalisation import fit_group_standardizer
from diffjax.errors import ConfigError
from diffjax.train.workdir import read_metrics
from diffjax.weights.classifier import (classifier_accuracy, classifier_logits,
                                        fit_classifier, init_classifier)
from diffjax.weights.layout import (flatten_weights, layer_groups, layout_of_sizes,
                                    unflatten_weights, weight_layout)
from diffjax.weights.zoo import Zoo, load_zoo, save_zoo

SIZES = (5, 7, 4, 3)


def test_flattening_reloads_weights_exactly():
  params = init_classifier(jax.random.PRNGKey(0), SIZES)
  params = tuple((w, b + jnp.arange(b.shape[0], dtype=b.dtype)) for w, b in params)
  layout = weight_layout(params)
  assert layout == layout_of_sizes(SIZES) and layout.layer_sizes == SIZES
  vector = flatten_weights(params)
  assert vector.shape == (layout.size,) == (5 * 7 + 7 + 7 * 4 + 4 + 4 * 3 + 3,)
  back = unflatten_weights(vector, layout)
  for (w, b), (w2, b2) in zip(params, back):
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(b, b2)
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 5))
  np.testing.assert_array_equal(classifier_logits(params, x), classifier_logits(back, x))
  groups = layer_groups(layout)
  assert groups[0] == slice(0, 35) and groups[-1].stop == layout.size
  np.testing.assert_array_equal(vector[groups[2]], params[1][0].reshape(-1))


def test_per_layer_normalisation_round_trips():
  rng = np.random.default_rng(0)
  layout = layout_of_sizes(SIZES)
  vectors = rng.normal(size=(20, layout.size)) * np.repeat(
      np.arange(1.0, 7.0), [s.stop - s.start for s in layer_groups(layout)])
  normaliser = fit_group_standardizer(vectors, layer_groups(layout))
  z = normaliser.normalise(vectors)
  for group in layer_groups(layout):
    assert abs(z[:, group].mean()) < 1e-5 and abs(z[:, group].std() - 1.0) < 1e-4
    assert np.ptp(normaliser.std[group]) == 0.0          # One scale per layer.
  np.testing.assert_allclose(normaliser.denormalise(z), vectors, rtol=1e-5, atol=1e-5)


def test_zoo_file_round_trip_and_mixed_architectures_refused(tmp_path):
  layout = layout_of_sizes(SIZES)
  vectors = np.random.default_rng(1).normal(size=(3, layout.size)).astype(np.float32)
  path = str(tmp_path / "zoo.npz")
  save_zoo(path, Zoo(vectors, np.array([0, 1, 1]), layout))
  zoo = load_zoo(path)
  np.testing.assert_array_equal(zoo.vectors, vectors)
  np.testing.assert_array_equal(zoo.tasks, [0, 1, 1])
  assert zoo.layout == layout
  with np.load(path) as data:
    arrays = dict(data)
  arrays["net2.w0"], arrays["net2.b0"] = np.zeros((5, 9)), np.zeros(9)
  arrays["net2.w1"] = np.zeros((9, 4))
  np.savez(path, **arrays)
  with pytest.raises(ConfigError, match=r"mixes architectures: network 2 has layer sizes "
                                        r"\(5, 9, 4, 3\), network 0 \(5, 7, 4, 3\)"):
    load_zoo(path)
  arrays["net2.w1"] = np.zeros((8, 4))
  np.savez(path, **arrays)
  with pytest.raises(ConfigError, match="network 2 layer 1 has w \\(8, 4\\)"):
    load_zoo(path)


def test_classifier_training_and_the_dataset_embedding():
  task = classification_task(0, 0, num_features=6, num_classes=3, num_train=300,
                             num_test=300)
  assert task.x_train.shape == (300, 6) and set(np.unique(task.y_train)) == {0, 1, 2}
  params = init_classifier(jax.random.PRNGKey(0), (6, 16, 3))
  before = float(classifier_accuracy(params, task.x_test, task.y_test))
  trained = jax.jit(lambda p, k: fit_classifier(p, k, task.x_train, task.y_train, epochs=20,
                                                batch_size=30, learning_rate=1e-2))(
                                                    params, jax.random.PRNGKey(1))
  after = float(classifier_accuracy(trained, task.x_test, task.y_test))
  assert after > 0.7 and after > before + 0.2
  embedding = dataset_embedding(task.x_train, task.y_train, 3, embed_dim=2, seed=5)
  projection = np.random.default_rng(5).normal(size=(6, 2)) / np.sqrt(6)
  expected = np.concatenate([task.x_train[task.y_train == c].mean(0) @ projection
                             for c in range(3)])
  np.testing.assert_allclose(embedding, expected, rtol=1e-5, atol=1e-6)
  other = classification_task(0, 1, num_features=6, num_classes=3)
  assert not np.allclose(dataset_embedding(other.x_train, other.y_train, 3, 2, 5), embedding)


def test_d2nwg_tiny_end_to_end(tmp_path):
  from configs.datatypes import d2nwg  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(d2nwg.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  for kind in ("generated", "zoo", "random"):
    for name in (f"acc_{kind}", f"acc_finetuned_{kind}"):
      assert 0.0 <= record[name] <= 1.0
  assert record["acc_ratio"] == pytest.approx(record["acc_generated"] / record["acc_zoo"])
  for name in ("share_generated_at_zoo", "acc_generated_other_task", "acc_zoo_other_task"):
    assert 0.0 <= record[name] <= 1.0


def test_mixed_zoo_fails_in_one_line_before_the_workdir(tmp_path):
  """The family refuses the file as `load_zoo` does, before the workdir exists (the
  command line turns this ConfigError into one line and exit 2, as
  tests/test_datatypes_replay.py checks for a bad buffer)."""
  from configs.datatypes import d2nwg  # pylint: disable=g-import-not-at-top
  layout = layout_of_sizes((8, 4, 3))
  path = str(tmp_path / "zoo.npz")
  save_zoo(path, Zoo(np.zeros((2, layout.size), np.float32), np.array([0, 1]), layout))
  with np.load(path) as data:
    arrays = dict(data)
  arrays["net1.w0"], arrays["net1.b0"], arrays["net1.w1"] = (np.zeros((8, 6)), np.zeros(6),
                                                             np.zeros((6, 3)))
  np.savez(path, **arrays)
  config = d2nwg.get_config("tiny")
  config.data.zoo = path
  with pytest.raises(ConfigError, match="mixes architectures: network 1") as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not (tmp_path / "run").exists()
