"""Image data: tfds loaders (mocked), digits, dequantisation, sharding, resumability."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from diffjax.data import (IMAGE_DATASETS, DatasetNotPreparedError, ImageStream,
                          image_batches, load_image_dataset)
from diffjax.data.images import ArrayRecords, ImageSource, dequantize, quantize
from diffjax.registry import UnknownComponentError


def _stack(batches):
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)),
                                         ("fashion_mnist", (28, 28, 1)),
                                         ("cifar10", (32, 32, 3))])
def test_tfds_loaders_give_images_in_range(name, shape):
  with tfds.testing.mock_data(num_examples=24):
    source = load_image_dataset(name, "train")
    assert source.image_shape == shape and source.num_classes == 10 and len(source) == 24
    batch = next(image_batches(source, 8, seed=3, random_flip=True))
  assert batch["image"].shape == (8, *shape) and batch["image"].dtype == np.float32
  assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
  assert batch["image"].min() >= -1 and batch["image"].max() < 1
  assert np.all((batch["label"] >= 0) & (batch["label"] < 10))
  # Dequantised pixels stay in their integer bin: quantize recovers the raw levels.
  with tfds.testing.mock_data(num_examples=24):
    stream = ImageStream(load_image_dataset(name, "train"), 8, seed=3, dequantize=False)
    raw = [stream.source.records[int(i)]["image"] for i in stream.indices(0)]
  np.testing.assert_array_equal(quantize(stream.batch(0)["image"]), np.stack(raw))


def test_missing_tfds_dataset_says_how_to_prepare_it(tmp_path):
  with pytest.raises(DatasetNotPreparedError) as info:
    load_image_dataset("mnist", "train", data_dir=str(tmp_path))
  message = str(info.value)
  assert "tfds build mnist --file_format=array_record" in message
  assert f"--data_dir={tmp_path}" in message and "download_and_prepare" in message


def test_registry_names_and_unknown_name():
  assert set(IMAGE_DATASETS.names()) >= {"mnist", "fashion_mnist", "cifar10", "digits"}
  with pytest.raises(UnknownComponentError, match="digits"):
    load_image_dataset("imagenet")


def test_digits_splits_sizes_and_upsampling():
  train, test = load_image_dataset("digits", "train"), load_image_dataset("digits", "test")
  assert len(train) == 1497 and len(test) == 300
  assert train.image_shape == (8, 8, 1) and train.num_levels == 17
  train_set = {train.records.images[i].tobytes() for i in range(len(train))}
  assert sum(test.records.images[i].tobytes() in train_set for i in range(len(test))) < 10
  big = load_image_dataset("digits", "test", image_size=16)
  np.testing.assert_array_equal(big.records.images[:, ::2, ::2], test.records.images)
  padded = load_image_dataset("digits", "test", image_size=12, resize="pad")
  np.testing.assert_array_equal(padded.records.images[:, 2:10, 2:10], test.records.images)
  assert padded.records.images[:, :2].max() == 0
  with pytest.raises(ValueError, match="multiple of 8"):
    load_image_dataset("digits", image_size=12)


def test_dequantisation_convention():
  levels = np.array([0, 8, 16])
  np.testing.assert_allclose(dequantize(levels, 17), (2 * levels + 1) / 17 - 1, rtol=1e-6)
  np.testing.assert_allclose(dequantize(levels, 17, noise=np.zeros(3)), 2 * levels / 17 - 1)
  np.testing.assert_array_equal(quantize(dequantize(levels, 17, np.full(3, 0.999)), 17),
                                levels)


def _toy_source(n=10):
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3, 1), np.uint8)
  return ImageSource(ArrayRecords(images, np.arange(n)), (2, 3, 1), n, 256, "toy")


def test_host_shards_are_disjoint_and_cover_the_global_batch():
  source = _toy_source(50)
  single = ImageStream(source, 12, seed=7, random_flip=True, process_count=1, process_index=0)
  hosts = [ImageStream(source, 12, seed=7, random_flip=True, process_count=3,
                       process_index=p) for p in range(3)]
  for step in (0, 4):
    shards = [h.indices(step) for h in hosts]
    assert all(len(s) == 4 for s in shards)
    assert len(set(np.concatenate(shards))) == 12  # Disjoint (50 > 12, one epoch).
    np.testing.assert_array_equal(np.concatenate(shards), single.indices(step))
    # Same pixels, flips and noise: the global batch does not depend on the host count.
    joined = _stack([h.batch(step) for h in hosts])
    for key in ("image", "label"):
      np.testing.assert_array_equal(joined[key], single.batch(step)[key])
  with pytest.raises(ValueError, match="divisible"):
    ImageStream(source, 10, process_count=3, process_index=0)


def test_epochs_are_permutations_and_seeds_differ():
  source = _toy_source(10)
  stream = ImageStream(source, 5, seed=1)
  for epoch in range(3):  # Two batches per epoch: every example exactly once.
    seen = np.concatenate([stream.indices(2 * epoch), stream.indices(2 * epoch + 1)])
    np.testing.assert_array_equal(np.sort(seen), np.arange(10))
  assert not np.array_equal(stream.indices(0), stream.indices(2))  # Reshuffled.
  other = ImageStream(source, 5, seed=2)
  assert not np.array_equal(stream.batch(0)["image"], other.batch(0)["image"])


def test_stream_is_deterministic_and_resumable():
  source = load_image_dataset("digits", "test")
  run = image_batches(source, 16, seed=5, random_flip=True)
  first = [next(run) for _ in range(6)]
  resumed = image_batches(source, 16, seed=5, random_flip=True, start_step=4)
  for expected in first[4:]:
    got = next(resumed)
    np.testing.assert_array_equal(got["image"], expected["image"])
    np.testing.assert_array_equal(got["label"], expected["label"])
  assert not np.array_equal(first[0]["image"], first[1]["image"])
  # Random flips: some images of a batch are mirrored versions of their record.
  stream = ImageStream(source, 64, seed=5, random_flip=True, dequantize=False)
  batch, raw = stream.batch(0)["image"], [source.records[int(i)]["image"]
                                           for i in stream.indices(0)]
  raw = dequantize(np.stack(raw), 17)
  flipped = [not np.array_equal(b, r) and np.array_equal(b, r[:, ::-1])
             for b, r in zip(batch, raw)]
  assert 10 < sum(flipped) < 54
