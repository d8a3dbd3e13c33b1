"""Inception FID: the Flax InceptionV3 against pytorch-fid's network (random weights), weight
files and their errors, resizing, statistics files and the image experiment's wiring.

Every weight here is random; nothing is downloaded. Network calls use batches of 2 images
so that the file compiles InceptionV3 once.
"""
import sys

import jax
import numpy as np
import pytest

from diffjax import image_metrics, inception


@pytest.fixture(scope="module")
def params():
  return inception.random_inception_params(seed=0)


@pytest.fixture(scope="module")
def npz_path(params, tmp_path_factory):
  path = tmp_path_factory.mktemp("weights") / "inception.npz"
  inception.save_inception_weights(path, params)
  return path


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _random_pytorch_fid_network(monkeypatch, torch):
  """pytorch-fid's FID InceptionV3 (from 2048-d pool3, no resizing, inputs in [-1, 1]) with
  random weights and random BatchNorm statistics, built by its own code: its loader of the
  released weights is replaced by one returning the freshly built network's own state dict
  (so its strict key check still runs)."""
  fid_module = pytest.importorskip("pytorch_fid.inception")
  built = []
  build = fid_module._inception_v3  # pylint: disable=protected-access
  monkeypatch.setattr(fid_module, "_inception_v3",
                      lambda *a, **k: built.append(build(*a, **k)) or built[-1])
  monkeypatch.setattr(fid_module, "load_state_dict_from_url",
                      lambda *a, **k: built[-1].state_dict())
  torch.manual_seed(0)
  network = fid_module.InceptionV3(resize_input=False, normalize_input=False).eval()
  with torch.no_grad():
    for module in network.modules():
      if isinstance(module, torch.nn.Conv2d):
        torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
      elif isinstance(module, torch.nn.BatchNorm2d):
        for tensor, low, high in ((module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2),
                                  (module.running_mean, -0.2, 0.2),
                                  (module.running_var, 0.5, 2.0)):
          tensor.uniform_(low, high)
  return network, built[-1].state_dict()


def test_features_match_pytorch_fid_and_the_converter(monkeypatch, tmp_path):
  torch = pytest.importorskip("torch")
  network, state_dict = _random_pytorch_fid_network(monkeypatch, torch)
  pth = tmp_path / inception.WEIGHTS_FILE
  torch.save(state_dict, pth)  # Includes fc.* (1008 logits) and num_batches_tracked.
  x = _images((2, 299, 299, 3))  # Already 299x299: both networks see the same input.
  with torch.no_grad():
    expected = network(torch.from_numpy(x.transpose(0, 3, 1, 2)))[0][:, :, 0, 0].numpy()
  loaded = inception.load_inception_weights(pth)
  features = inception.inception_features(x, loaded)
  assert features.shape == (2, 2048) and 0.1 < np.abs(expected).mean() < 10
  np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
  print(f"max |diffjax - pytorch-fid| = {np.abs(features - expected).max():.3g}")
  # The converter's .npz holds the same parameters.
  inception.main(["--convert", str(pth), str(tmp_path / "converted.npz")])
  jax.tree.map(np.testing.assert_array_equal, loaded,
               inception.load_inception_weights(tmp_path / "converted.npz"))
  # The resize is pytorch-fid's bilinear interpolation (half-pixel centres).
  small = _images((2, 8, 6, 3), seed=1)
  resized = torch.nn.functional.interpolate(torch.from_numpy(small.transpose(0, 3, 1, 2)),
                                            size=(299, 299), mode="bilinear",
                                            align_corners=False).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(inception.resize_for_inception(small), resized, atol=1e-5)


def test_resize_closed_forms():
  constant = np.full((1, 5, 7, 3), 0.25, np.float32)
  np.testing.assert_allclose(inception.resize_for_inception(constant), 0.25, atol=1e-6)
  # A ramp along the width: bilinear interpolation of a linear function at the source
  # coordinate (j + 1/2) W / 299 - 1/2, clamped to the first and last pixel centres.
  width = 7
  ramp = np.broadcast_to(np.linspace(-1, 1, width, dtype=np.float32), (1, 4, width))[..., None]
  source = np.clip((np.arange(299) + 0.5) * width / 299 - 0.5, 0, width - 1)
  resized = np.asarray(inception.resize_for_inception(ramp))
  assert resized.shape == (1, 299, 299, 3)
  np.testing.assert_allclose(resized[0, 100, :, 1], -1 + 2 * source / (width - 1), atol=1e-5)
  with pytest.raises(ValueError, match=r"C = 1 or 3; got \(2, 8, 8, 2\)"):
    inception.resize_for_inception(np.zeros((2, 8, 8, 2)))


def test_npz_round_trip_batching_and_grayscale(params, npz_path):
  images = _images((3, 299, 299, 3))
  features = inception.inception_features(images, params, batch_size=2)
  assert features.shape == (3, 2048) and features.dtype == np.float32
  assert np.all(np.isfinite(features)) and np.abs(features).mean() > 0.1
  # Reloaded .npz: identical features. Reversed order: rows follow whatever the batching.
  loaded = inception.inception_features(
      images[::-1], inception.load_inception_weights(npz_path), batch_size=2)
  np.testing.assert_allclose(loaded[::-1], features, rtol=1e-5, atol=1e-6)
  gray = _images((2, 12, 12, 1), seed=2)
  np.testing.assert_array_equal(inception.inception_features(gray, params),
                                inception.inception_features(np.repeat(gray, 3, -1), params))


def _broken_weights(npz_path, path, edit):
  with np.load(npz_path) as data:
    arrays = dict(data)
  edit(arrays)
  np.savez(path, **arrays)
  return path


def test_weight_file_errors_name_the_problem(npz_path, tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match="never downloads") as error:
    inception.load_inception_weights(tmp_path / "absent.npz")
  assert inception.WEIGHTS_URL in str(error.value)

  def edit(arrays):
    del arrays["Mixed_5b/branch1x1/kernel"]
    arrays["Mixed_5b/extra/kernel"] = np.zeros(3)
    arrays["Conv2d_1a_3x3/scale"] = np.ones(31)

  broken = _broken_weights(npz_path, tmp_path / "broken.npz", edit)
  with pytest.raises(inception.InceptionWeightsError) as error:
    inception.load_inception_weights(broken)
  message = str(error.value)
  assert "missing keys (1): Mixed_5b/branch1x1/kernel" in message
  assert "unexpected keys (1): Mixed_5b/extra/kernel" in message
  assert "Conv2d_1a_3x3/scale expected (32,), got (31,)" in message
  (tmp_path / "garbage.npz").write_bytes(b"not a zip archive")
  with pytest.raises(inception.InceptionWeightsError, match="Could not read .* as an .npz"):
    inception.load_inception_weights(tmp_path / "garbage.npz")
  (tmp_path / "weights.h5").write_bytes(b"")
  with pytest.raises(inception.InceptionWeightsError, match="valid: .npz"):
    inception.load_inception_weights(tmp_path / "weights.h5")
  # Without torch a .pth file is refused with the command that converts it.
  (tmp_path / "weights.pth").write_bytes(b"")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(inception.InceptionWeightsError, match="needs torch") as error:
    inception.load_inception_weights(tmp_path / "weights.pth")
  assert "python -m diffjax.inception --convert IN.pth OUT.npz" in str(error.value)


def test_pth_shape_errors_use_the_pytorch_layout(tmp_path):
  torch = pytest.importorskip("torch")
  state = {inception._torch_name(name): torch.zeros(shape)  # pylint: disable=protected-access
           for name, shape in inception.expected_shapes().items()}
  state["Conv2d_1a_3x3.conv.weight"] = torch.zeros(32, 3, 3, 4)
  torch.save(state, tmp_path / "bad.pth")
  with pytest.raises(inception.InceptionWeightsError,
                     match=r"Conv2d_1a_3x3.conv.weight expected \(32, 3, 3, 3\), "
                           r"got \(32, 3, 3, 4\)"):
    inception.load_inception_weights(tmp_path / "bad.pth")


def test_inception_fid_statistics_and_closed_forms(params, npz_path, tmp_path):
  images = _images((2, 16, 16, 3), seed=3)
  mu, sigma = image_metrics.inception_statistics(images, npz_path)
  assert mu.shape == (2048,) and sigma.shape == (2048, 2048)
  tolerance = 1e-9 * np.trace(sigma)
  assert abs(image_metrics.inception_fid(images, images, params)) < tolerance
  image_metrics.save_reference_statistics(tmp_path / "reference.npz", mu, sigma)
  assert abs(image_metrics.inception_fid(images, tmp_path / "reference.npz", npz_path)) < tolerance
  other = _images((2, 16, 16, 3), seed=4)
  assert image_metrics.inception_fid(other, (mu, sigma), params) > 1e6 * tolerance
  # Known Gaussian pair (commuting covariances) through a saved statistics file.
  a, b = np.linspace(0.5, 2.0, 64), np.linspace(3.0, 1.0, 64)
  image_metrics.save_reference_statistics(tmp_path / "gauss.npz", np.ones(64), np.diag(b))
  reference = image_metrics.load_reference_statistics(tmp_path / "gauss.npz")
  assert image_metrics.frechet_distance(np.zeros(64), np.diag(a), *reference) == pytest.approx(
      64 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)
  np.savez(tmp_path / "not_stats.npz", mean=mu)
  with pytest.raises(ValueError, match=r"lacks the arrays \['mu', 'sigma'\]"):
    image_metrics.load_reference_statistics(tmp_path / "not_stats.npz")


@pytest.mark.parametrize("num_features", [10, 80])  # Sample-space (N <= D) and general paths.
def test_frechet_distance_to_statistics_equals_the_general_formula(num_features):
  rng = np.random.default_rng(num_features)
  features = rng.standard_normal((num_features, 50)) * np.linspace(0.5, 2, 50)
  a = rng.standard_normal((50, 50))
  mu, sigma = rng.standard_normal(50), a @ a.T / 50  # Not commuting with the features' fit.
  expected = image_metrics.frechet_distance(*image_metrics.feature_statistics(features), mu,
                                            sigma)
  # Tolerance: the general formula takes square roots of the rounding errors in the zero
  # eigenvalues of the rank-deficient fit (N = 10).
  assert image_metrics.frechet_distance_to_statistics(features, mu, sigma) == pytest.approx(
      expected, rel=1e-7)


def _tiny_digits_config(**eval_fields):
  from configs.images import digits  # pylint: disable=g-import-not-at-top
  config = digits.get_config("tiny")
  assert config.eval.inception_weights == ""  # Off by default.
  config.eval.update(**eval_fields)
  return config


def test_image_experiment_reports_inception_fid(npz_path, tmp_path, monkeypatch):
  import experiments  # pylint: disable=g-import-not-at-top
  missing = _tiny_digits_config(inception_weights=str(tmp_path / "absent.pth"))
  with pytest.raises(FileNotFoundError, match="never downloads"):  # At start-up.
    experiments.images.build_task(missing)
  # The digits metrics (tested elsewhere) would train their classifier: stubbed out here.
  monkeypatch.setattr(image_metrics, "digits_frechet_distance", lambda *a: 0.0)
  monkeypatch.setattr(image_metrics, "digits_class_accuracy", lambda *a: 0.0)
  config = _tiny_digits_config(inception_weights=str(npz_path), num_samples=2, bpd_examples=0)
  task = experiments.images.build_task(config)
  shapes = jax.eval_shape(task.init_params, jax.random.PRNGKey(0))
  params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)  # Skips a slow init.
  values, _ = task.evaluate(params, jax.random.PRNGKey(1))
  assert np.isfinite(values["inception_fid"]) and values["inception_fid"] > 0
