"""Image datasets as endless, resumable streams of NumPy batches, sharded over hosts.

Pixel convention (used by every image model, metric and plot in diffjax): an integer
pixel value v in {0, ..., K - 1} (K = `num_levels`: 256 for 8-bit images, 17 for the
scikit-learn digits) becomes the float

    x = 2 (v + u) / K - 1,   u ~ U[0, 1)  (uniform dequantisation), so x in [-1, 1),

following Theis et al., "A note on the evaluation of generative models" (ICLR 2016),
section 3.1: likelihoods of dequantised data bound those of the discrete data. Without
dequantisation u = 1/2 (the bin centre). `quantize` maps floats back to integer levels.

Order and sharding: the stream visits the dataset epoch after epoch, each epoch in a fresh
permutation drawn from (seed, epoch). The global batch of step s holds the stream positions
[s B, (s + 1) B); process p of P reads only the records of positions
[s B + p B / P, s B + (p + 1) B / P), so hosts read disjoint slices and their local batches
concatenate to the global batch. Flips and dequantisation noise of an example depend only on
(seed, step, position), so `batch(s)` is a pure function of (seed, s): a run resumed at step
s sees exactly the batches of an uninterrupted run, with no iterator state to checkpoint, and
the global batch does not depend on the number of hosts.
"""
import dataclasses
import functools
from typing import Any, Dict, Iterator, Optional, Tuple

import jax
import numpy as np

from diffjax.errors import ConfigError
from diffjax.registry import Registry

IMAGE_DATASETS = Registry("image dataset")


class DatasetNotPreparedError(FileNotFoundError):
  """A tfds dataset is not prepared (in array_record format) in the data directory."""


@dataclasses.dataclass(frozen=True)
class ImageSource:
  """A random-access image dataset.

  records: len(records) examples; records[i] -> {"image": (H, W, C) integers in
    [0, num_levels), "label": int}. A `tfds.data_source` qualifies.
  """
  records: Any
  image_shape: Tuple[int, int, int]
  num_classes: int
  num_levels: int = 256
  name: str = ""

  def __len__(self):
    return len(self.records)

  def first_levels(self, count: int) -> np.ndarray:
    """The first min(count, len) images as integer levels: (n, H, W, C)."""
    return np.stack([np.asarray(self.records[i]["image"])
                     for i in range(min(count, len(self)))])


class ArrayRecords:
  """In-memory records: images (N, H, W, C) integer levels and labels (N,)."""

  def __init__(self, images, labels):
    if len(images) != len(labels):
      raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    self.images, self.labels = np.asarray(images), np.asarray(labels)

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    return {"image": self.images[i], "label": self.labels[i]}


def dequantize(levels, num_levels, noise=None):
  """Integer levels (...,) -> floats in [-1, 1); noise ~ U[0, 1) of the same shape, or None
  for bin centres."""
  u = 0.5 if noise is None else noise
  return (2.0 * (np.asarray(levels, np.float32) + u) / num_levels - 1.0).astype(np.float32)


def quantize(x, num_levels=256):
  """Floats in [-1, 1] -> integer levels in [0, num_levels), the inverse of `dequantize`."""
  levels = np.floor((np.asarray(x, np.float64) + 1.0) * num_levels / 2.0)
  return np.clip(levels, 0, num_levels - 1).astype(np.int32)


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed, epoch, size):
  return np.random.default_rng((seed, 0, epoch)).permutation(size)


@dataclasses.dataclass(frozen=True)
class ImageStream:
  """The endless batch stream of `source` for one process; see the module docstring.

  batch(step) -> {"image": (B_local, H, W, C) float32 in [-1, 1), "label": (B_local,) int32}
  with B_local = global_batch_size / process_count. process_index and process_count
  default to jax.process_index() and jax.process_count().
  """
  source: ImageSource
  global_batch_size: int
  seed: int = 0
  random_flip: bool = False
  dequantize: bool = True
  process_index: Optional[int] = None
  process_count: Optional[int] = None

  def __post_init__(self):
    if self.process_index is None or self.process_count is None:
      if self.process_index is None:
        object.__setattr__(self, "process_index", jax.process_index())
      if self.process_count is None:
        object.__setattr__(self, "process_count", jax.process_count())
    if self.global_batch_size % self.process_count:
      raise ValueError(f"global_batch_size={self.global_batch_size} is not divisible by "
                       f"the number of processes ({self.process_count}).")
    if not 0 <= self.process_index < self.process_count:
      raise ValueError(f"process_index {self.process_index} is not in "
                       f"[0, {self.process_count}).")
    if len(self.source) == 0:
      raise ValueError(f"Image dataset {self.source.name!r} is empty.")

  @property
  def local_batch_size(self) -> int:
    return self.global_batch_size // self.process_count

  def positions(self, step: int) -> np.ndarray:
    """(B_local,) positions in the endless stream read by this process at `step`."""
    start = step * self.global_batch_size + self.process_index * self.local_batch_size
    return np.arange(start, start + self.local_batch_size)

  def indices(self, step: int) -> np.ndarray:
    """(B_local,) dataset indices read by this process at `step`."""
    size = len(self.source)
    epochs, offsets = np.divmod(self.positions(step), size)
    return np.array([_epoch_permutation(self.seed, int(e), size)[o]
                     for e, o in zip(epochs, offsets)], dtype=np.int64)

  def batch(self, step: int) -> Dict[str, np.ndarray]:
    images, labels = [], []
    for position, index in zip(self.positions(step), self.indices(step)):
      record = self.source.records[int(index)]
      image = np.asarray(record["image"])
      rng = np.random.default_rng((self.seed, 1, step, int(position)))
      if self.random_flip and rng.random() < 0.5:
        image = image[:, ::-1]
      noise = rng.random(image.shape, dtype=np.float32) if self.dequantize else None
      images.append(dequantize(image, self.source.num_levels, noise))
      labels.append(record["label"])
    return {"image": np.stack(images), "label": np.asarray(labels, np.int32)}

  def iterate(self, start_step: int = 0) -> Iterator[Dict[str, np.ndarray]]:
    """Yields batch(start_step), batch(start_step + 1), ... forever."""
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


def image_batches(source: ImageSource, global_batch_size: int, *, seed: int = 0,
                  start_step: int = 0, random_flip: bool = False, dequantize: bool = True,
                  process_index: Optional[int] = None,
                  process_count: Optional[int] = None) -> Iterator[Dict[str, np.ndarray]]:
  """The endless iterator of this process's batches from `start_step` (see ImageStream)."""
  stream = ImageStream(source, global_batch_size, seed=seed, random_flip=random_flip,
                       dequantize=dequantize, process_index=process_index,
                       process_count=process_count)
  return stream.iterate(start_step)


def not_prepared_message(name, split, data_dir):
  where = data_dir or "the default tfds data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
  target = f" --data_dir={data_dir}" if data_dir else ""
  return (
      f"The tfds dataset {name!r} (split {split!r}) is not prepared in array_record format "
      f"in {where}. On a machine with network access run\n"
      f"  tfds build {name} --file_format=array_record{target}\n"
      f"or, in Python, tfds.builder({name!r}, data_dir=DIR).download_and_prepare("
      f"file_format='array_record'), then copy DIR to this machine and pass data_dir=DIR "
      f"(every host of a multi-host run needs it). diffjax never downloads datasets itself "
      f"unless given download=True.")


def tfds_source(name: str, split: str = "train", *, data_dir: Optional[str] = None,
                image_size: Optional[int] = None, download: bool = False) -> ImageSource:
  """An ImageSource over `tfds.data_source(name, split)` (random access, no TensorFlow),
  at the dataset's own image size (`image_size`, if given, must equal it).

  Raises DatasetNotPreparedError, saying how to prepare the dataset, when it is missing.
  """
  # Imported here, not at the top: tensorflow-datasets takes about 0.7 s to import.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    records = tfds.data_source(name, split=split, data_dir=data_dir, download=download)
  except Exception as e:  # tfds raises several types (AssertionError, NotImplementedError).
    raise DatasetNotPreparedError(not_prepared_message(name, split, data_dir)) from e
  features = records.dataset_info.features
  shape = tuple(features["image"].shape)
  if image_size and image_size != shape[0]:
    raise ConfigError(f"data.image_size={image_size} but {name!r} images are {shape[0]}x"
                      f"{shape[1]}; tfds datasets are used at their own size (set "
                      f"data.image_size={shape[0]} or 0).")
  return ImageSource(records, shape, int(features["label"].num_classes), 256, name)


for _name in ("mnist", "fashion_mnist", "cifar10"):
  IMAGE_DATASETS.register(_name, functools.partial(tfds_source, _name))


def load_image_dataset(name: str, split: str = "train", *, image_size=None,
                       data_dir=None, **options) -> ImageSource:
  """The image dataset registered as `name` (mnist, fashion_mnist, cifar10, digits).

  Every loader takes the same options and uses those that apply to it: `image_size` (the
  digits are upsampled to it; tfds datasets must already have it) and `data_dir` (where
  tfds datasets are prepared; ignored by bundled data); other options are the loader's own
  (e.g. the digits' `resize`).
  """
  return IMAGE_DATASETS.get(name)(split, image_size=image_size or None,
                                  data_dir=data_dir or None, **options)
