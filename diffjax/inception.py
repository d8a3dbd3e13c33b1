"""InceptionV3 pool3 features for FID, in Flax, from a weights file the user supplies.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017) is the Fréchet distance between Gaussian fits of the 2048-d
pool3 features of the InceptionV3 network (Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016) released by TensorFlow as
"inception-2015-12-05". That graph differs from torchvision's InceptionV3, and so does
`InceptionV3` below:
  * every average pool inside the Mixed_5* (A), Mixed_6b-e (C) and Mixed_7b (E) blocks
    ignores padded pixels (averages over the pixels inside the image only);
  * the pool branch of the last block (Mixed_7c) takes a 3x3 max, not an average;
  * BatchNorm uses eps = 1e-3; there are no auxiliary logits; the features are the spatial
    mean of Mixed_7c's (N, 8, 8, 2048) output.

diffjax never downloads weights. Download pytorch-fid's port of the TensorFlow weights,
`WEIGHTS_URL`, yourself and pass its path (reading a .pth file needs torch), or convert it
once, where torch is installed, to diffjax's .npz layout:

    python -m diffjax.inception --convert pt_inception-2015-12-05-6726825d.pth inception.npz

The .npz layout names each array "<module path>/<leaf>", e.g. "Mixed_5b/branch1x1/kernel"
(HWIO), ".../scale", ".../bias", ".../mean", ".../var" (the BatchNorm affine parameters and
running statistics); the module paths are pytorch-fid's.
"""
import argparse
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

INPUT_SIZE = 299
FEATURE_DIM = 2048
BATCH_NORM_EPS = 1e-3
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)
CONVERT_COMMAND = "python -m diffjax.inception --convert IN.pth OUT.npz"
# diffjax leaf name -> suffix of the pytorch-fid state-dict key.
_TORCH_LEAVES = {"kernel": "conv.weight", "scale": "bn.weight", "bias": "bn.bias",
                 "mean": "bn.running_mean", "var": "bn.running_var"}


class InceptionWeightsError(ValueError):
  """A weights file that cannot be read or does not match the FID InceptionV3."""


class InceptionWeightsNotFoundError(InceptionWeightsError, FileNotFoundError):
  """The weights file does not exist (diffjax never downloads it)."""


class ConvBN(nn.Module):
  """Bias-free convolution, inference-mode BatchNorm (eps 1e-3), ReLU.

  (N, H, W, C) -> (N, H', W', features); padding "SAME" (stride 1 only) or "VALID".
  """
  features: int
  kernel_size: tuple = (1, 1)
  stride: int = 1
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x):
    shape = (*self.kernel_size, x.shape[-1], self.features)
    kernel = self.param("kernel", nn.initializers.he_normal(), shape)
    scale = self.param("scale", nn.initializers.ones, (self.features,))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    y = jax.lax.conv_general_dilated(x, kernel, (self.stride, self.stride), self.padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    gain = scale * jax.lax.rsqrt(var + BATCH_NORM_EPS)
    return nn.relu(y * gain.reshape(1, 1, 1, -1) + (bias - mean * gain).reshape(1, 1, 1, -1))


def _chain(x, *layers):
  """Applies ConvBN layers given as (name, features, kernel, stride=1, padding="SAME")."""
  for name, features, kernel, *rest in layers:
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = ConvBN(features, kernel, *rest, name=name)(x)
  return x


def _avg_pool_3x3(x):
  """3x3 stride-1 mean over the pixels inside the image (TensorFlow's "SAME" average)."""
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, stride):
  """3x3 max; stride 1 pads (padding never wins), stride 2 does not."""
  return nn.max_pool(x, (3, 3), (stride, stride), "SAME" if stride == 1 else "VALID")


class InceptionA(nn.Module):
  """Mixed_5b-d: (N, 35, 35, C) -> (N, 35, 35, 224 + pool_features)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _chain(x, ("branch1x1", 64, 1)),
        _chain(x, ("branch5x5_1", 48, 1), ("branch5x5_2", 64, 5)),
        _chain(x, ("branch3x3dbl_1", 64, 1), ("branch3x3dbl_2", 96, 3),
               ("branch3x3dbl_3", 96, 3)),
        _chain(_avg_pool_3x3(x), ("branch_pool", self.pool_features, 1))], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (grid reduction): (N, 35, 35, 288) -> (N, 17, 17, 768)."""

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _chain(x, ("branch3x3", 384, 3, 2, "VALID")),
        _chain(x, ("branch3x3dbl_1", 64, 1), ("branch3x3dbl_2", 96, 3),
               ("branch3x3dbl_3", 96, 3, 2, "VALID")),
        _max_pool_3x3(x, 2)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b-e (factorised 7x7): (N, 17, 17, 768) -> (N, 17, 17, 768)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    return jnp.concatenate([
        _chain(x, ("branch1x1", 192, 1)),
        _chain(x, ("branch7x7_1", c, 1), ("branch7x7_2", c, (1, 7)),
               ("branch7x7_3", 192, (7, 1))),
        _chain(x, ("branch7x7dbl_1", c, 1), ("branch7x7dbl_2", c, (7, 1)),
               ("branch7x7dbl_3", c, (1, 7)), ("branch7x7dbl_4", c, (7, 1)),
               ("branch7x7dbl_5", 192, (1, 7))),
        _chain(_avg_pool_3x3(x), ("branch_pool", 192, 1))], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (grid reduction): (N, 17, 17, 768) -> (N, 8, 8, 1280)."""

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _chain(x, ("branch3x3_1", 192, 1), ("branch3x3_2", 320, 3, 2, "VALID")),
        _chain(x, ("branch7x7x3_1", 192, 1), ("branch7x7x3_2", 192, (1, 7)),
               ("branch7x7x3_3", 192, (7, 1)), ("branch7x7x3_4", 192, 3, 2, "VALID")),
        _max_pool_3x3(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b/c (expanded filter bank): (N, 8, 8, C) -> (N, 8, 8, 2048).

  pool: "avg" (Mixed_7b) or "max" (Mixed_7c, as in the TensorFlow FID graph).
  """
  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    def split(h, prefix):  # Parallel 1x3 and 3x1 convolutions of the same input.
      return [_chain(h, (f"{prefix}a", 384, (1, 3))), _chain(h, (f"{prefix}b", 384, (3, 1)))]

    pooled = _avg_pool_3x3(x) if self.pool == "avg" else _max_pool_3x3(x, 1)
    return jnp.concatenate([
        _chain(x, ("branch1x1", 320, 1)),
        *split(_chain(x, ("branch3x3_1", 384, 1)), "branch3x3_2"),
        *split(_chain(x, ("branch3x3dbl_1", 448, 1), ("branch3x3dbl_2", 384, 3)),
               "branch3x3dbl_3"),
        _chain(pooled, ("branch_pool", 192, 1))], axis=-1)


class InceptionV3(nn.Module):
  """FID InceptionV3 up to pool3: (N, 299, 299, 3) in [-1, 1] -> (N, 2048) features."""

  @nn.compact
  def __call__(self, x):
    x = _chain(x, ("Conv2d_1a_3x3", 32, 3, 2, "VALID"), ("Conv2d_2a_3x3", 32, 3, 1, "VALID"),
               ("Conv2d_2b_3x3", 64, 3))                        # (N, 147, 147, 64)
    x = _chain(_max_pool_3x3(x, 2), ("Conv2d_3b_1x1", 80, 1),
               ("Conv2d_4a_3x3", 192, 3, 1, "VALID"))           # (N, 71, 71, 192)
    x = _max_pool_3x3(x, 2)                                     # (N, 35, 35, 192)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name="Mixed_6a")(x)                          # (N, 17, 17, 768)
    for name, channels in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                           ("Mixed_6e", 192)):
      x = InceptionC(channels, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)                          # (N, 8, 8, 1280)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)                   # (N, 8, 8, 2048)
    return jnp.mean(x, axis=(1, 2))


def resize_for_inception(images):
  """(N, H, W, C) images, C = 1 (repeated to RGB) or 3 -> (N, 299, 299, 3) float32.

  Bilinear with half-pixel centres and no antialiasing (`jax.image.resize`), as
  pytorch-fid's `F.interpolate(..., mode="bilinear", align_corners=False)`; NOT
  bit-identical to the TensorFlow graph's own ResizeBilinear (torch-fidelity emulates that
  one), so FID values differ slightly between implementations: compare values computed by
  the same code.
  """
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or not images.shape[0]:
    raise ValueError(f"Expected images of shape (N, H, W, C) with N >= 1 and C = 1 or 3; "
                     f"got {images.shape}.")
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  target = (images.shape[0], INPUT_SIZE, INPUT_SIZE, 3)
  if images.shape == target:
    return images
  return jax.image.resize(images, target, "bilinear", antialias=False)


_resize = jax.jit(resize_for_inception)
_pool3 = jax.jit(InceptionV3().apply)


def inception_features(images, params, batch_size=50) -> np.ndarray:
  """(N, H, W, C) images in [-1, 1] (C = 1 or 3) -> (N, 2048) float32 pool3 features.

  Runs in compiled batches of min(batch_size, N) images (the last one padded), so a run
  compiles the network once per batch size.
  """
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or not len(images):
    raise ValueError(f"Expected images of shape (N, H, W, C) with N >= 1; got {images.shape}.")
  size = min(int(batch_size), len(images))
  features = []
  for start in range(0, len(images), size):
    batch = images[start:start + size]
    padded = np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)])
    features.append(np.asarray(_pool3({"params": params}, _resize(padded)))[:len(batch)])
  return np.concatenate(features).astype(np.float32)


@functools.lru_cache(maxsize=1)
def expected_shapes():
  """{"<module path>/<leaf>": shape} of the parameters in diffjax's .npz layout."""
  shapes = jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  flat = traverse_util.flatten_dict(shapes["params"], sep="/")
  return {name: tuple(leaf.shape) for name, leaf in flat.items()}


def random_inception_params(seed=0):
  """Random (NOT pretrained) params for tests, drawn in NumPy (seconds faster than `init`).

  Kernels ~ N(0, 2 / fan_in) (He et al. 2015) and BatchNorm terms near (1, 0, 0, 1), so the
  features of random inputs stay of order one through the whole network.
  """
  rng = np.random.default_rng(seed)
  draws = {"kernel": lambda s: rng.standard_normal(s) * np.sqrt(2 / np.prod(s[:3])),
           "scale": lambda s: rng.uniform(0.5, 1.5, s), "bias": lambda s: rng.uniform(-.2, .2, s),
           "mean": lambda s: rng.uniform(-.2, .2, s), "var": lambda s: rng.uniform(0.5, 2, s)}
  flat = {name: jnp.asarray(draws[name.rsplit("/", 1)[1]](shape), jnp.float32)
          for name, shape in expected_shapes().items()}
  return traverse_util.unflatten_dict(flat, sep="/")


def _torch_name(name):
  module, leaf = name.rsplit("/", 1)
  return f"{module.replace('/', '.')}.{_TORCH_LEAVES[leaf]}"


def _torch_ignored(key):
  """pytorch-fid entries that pool3 features do not use: the logits layer, BN step counts."""
  return key.startswith("fc.") or key.endswith(".num_batches_tracked")


def _listing(names, most=8):
  shown = ", ".join(names[:most])
  return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def _check(arrays, expected, path, layout, ignored=lambda key: False):
  """Raises InceptionWeightsError naming missing/unexpected keys and wrong shapes."""
  missing = sorted(set(expected) - set(arrays))
  unexpected = sorted(k for k in set(arrays) - set(expected) if not ignored(k))
  wrong = [f"{k} expected {expected[k]}, got {tuple(np.shape(arrays[k]))}"
           for k in sorted(set(expected) & set(arrays))
           if tuple(np.shape(arrays[k])) != expected[k]]
  problems = [f"{label} ({len(keys)}): {_listing(keys)}" for label, keys in
              (("missing keys", missing), ("unexpected keys", unexpected),
               ("shape mismatches", wrong)) if keys]
  if problems:
    raise InceptionWeightsError(
        f"{path} does not hold the FID InceptionV3 weights ({layout} layout): "
        + "; ".join(problems) + f". Expected {WEIGHTS_FILE} ({WEIGHTS_URL}) or its "
        f"conversion by `{CONVERT_COMMAND}`.")


def _read_torch(path):
  """pytorch-fid state dict -> flat {npz name: float32 array} (validated)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise InceptionWeightsError(
        f"Reading {path} needs torch, which is not installed. Convert the file to .npz "
        f"where torch is installed, `{CONVERT_COMMAND}`, and pass the .npz.") from error
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.detach().cpu().numpy() for k, v in state.items()}
  except Exception as error:  # pylint: disable=broad-except
    raise InceptionWeightsError(f"Could not read {path} as a PyTorch state dict: "
                                f"{error}") from error
  to_torch = {name: _torch_name(name) for name in expected_shapes()}
  torch_shapes = {to_torch[name]: (s[3], s[2], s[0], s[1]) if name.endswith("/kernel") else s
                  for name, s in expected_shapes().items()}
  _check(state, torch_shapes, path, "pytorch-fid state dict", _torch_ignored)
  return {name: state[key].transpose(2, 3, 1, 0) if name.endswith("/kernel") else state[key]
          for name, key in to_torch.items()}


def _read_npz(path):
  try:
    with np.load(path) as data:
      arrays = {k: data[k] for k in data.files}
  except Exception as error:  # pylint: disable=broad-except
    raise InceptionWeightsError(f"Could not read {path} as an .npz archive: {error}") from error
  _check(arrays, expected_shapes(), path, "diffjax .npz")
  return arrays


def _read_flat(path):
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise InceptionWeightsNotFoundError(
        f"InceptionV3 weights file {path!r} does not exist. diffjax never downloads weights: "
        f"download {WEIGHTS_URL} yourself and pass the path of {WEIGHTS_FILE}, or of its "
        f".npz conversion (`{CONVERT_COMMAND}`).")
  suffix = os.path.splitext(path)[1].lower()
  if suffix == ".npz":
    return _read_npz(path)
  if suffix in (".pth", ".pt"):
    return _read_torch(path)
  raise InceptionWeightsError(f"Unknown weights file type {suffix!r} of {path}; valid: .npz "
                              f"(diffjax layout) or .pth/.pt (pytorch-fid's {WEIGHTS_FILE}).")


def load_inception_weights(path):
  """Reads and validates InceptionV3 weights -> nested params for `InceptionV3` (float32).

  path: diffjax's .npz layout (see the module docstring) or pytorch-fid's state dict
  (.pth/.pt, read with torch, which is then needed). Never downloads anything.
  """
  flat = {k: jnp.asarray(v, jnp.float32) for k, v in _read_flat(path).items()}
  return traverse_util.unflatten_dict(flat, sep="/")


def save_inception_weights(path, params):
  """Writes nested InceptionV3 params to `path` in diffjax's .npz layout."""
  flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
  _check(flat, expected_shapes(), "the params to save", "diffjax")
  np.savez(path, **{k: np.asarray(v, np.float32) for k, v in flat.items()})


def convert_weights(source, target):
  """Converts pytorch-fid's .pth state dict `source` to diffjax's .npz `target`."""
  save_inception_weights(target, load_inception_weights(source))


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m diffjax.inception", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--convert", nargs=2, metavar=("IN.pth", "OUT.npz"), required=True,
                      help="convert pytorch-fid's state dict to diffjax's .npz layout")
  source, target = parser.parse_args(argv).convert
  convert_weights(source, target)
  print(f"Wrote {target}.")


if __name__ == "__main__":
  main()
