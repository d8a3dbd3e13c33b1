"""One diffusion space shared by several modalities (an image and its label).

"Diffusion Models for Multi-Task Generative Modeling" (Chen et al., ICLR 2024) puts every
modality of an example into one latent space through per-modality encoders, diffuses
that joint latent, and reads each modality back with its own decoder. Here each modality
has a fixed encoder and decoder (`Modality`) into its own block of one shared vector
(`JointSpace`), and the model is conditioned on an observed subset of the blocks
(`observation_condition`):

  cond = [z * m_1 ... z * m_K (the observed blocks, zero elsewhere), m_1 ... m_K]

so that one network generates jointly (no block observed: the unconditional model of the
joint), conditionally in either direction (label -> image, image -> label), trained with
the observation mask drawn per example (`random_observation`). An observed block is
generated as well; a caller keeps its observed value (`JointSpace.decode` of the joint).
"""
import dataclasses
from typing import Callable, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Modality:
  """A modality's encoder into its block of the joint space and its decoder back.

  Attributes:
    name: e.g. "image", "label".
    dim: the block's size D_k.
    encode: encode(values) -> (B, D_k) from the modality's values (B, ...).
    decode: decode(z (B, D_k)) -> the modality's values (B, ...).
  """
  name: str
  dim: int
  encode: Callable
  decode: Callable


def image_modality(shape: Tuple[int, ...]) -> Modality:
  """Images (B, *shape) in [-1, 1] flattened into a block of prod(shape) values; the
  decoder reshapes and clips to [-1, 1]."""
  dim = 1
  for s in shape:
    dim *= s
  return Modality("image", dim, lambda x: jnp.reshape(x, (x.shape[0], dim)),
                  lambda z: jnp.clip(z.reshape((z.shape[0], *shape)), -1.0, 1.0))


def label_modality(num_classes: int, scale: float = 1.0) -> Modality:
  """Class ids (B,) as centred one-hot codes scale * (2 e_y - 1) (every entry +-scale, so
  the block has the image pixels' range); the decoder is the argmax, so any point of
  the block decodes to a class."""
  def encode(labels):
    return scale * (2.0 * jax.nn.one_hot(labels, num_classes) - 1.0)
  return Modality("label", num_classes, encode,
                  lambda z: jnp.argmax(z, -1).astype(jnp.int32))


@dataclasses.dataclass(frozen=True)
class JointSpace:
  """The shared space: the modalities' blocks side by side, (B, sum D_k)."""
  modalities: Tuple[Modality, ...]

  @property
  def dim(self) -> int:
    return sum(m.dim for m in self.modalities)

  @property
  def names(self) -> Tuple[str, ...]:
    return tuple(m.name for m in self.modalities)

  @property
  def cond_dim(self) -> int:
    """Size of `observation_condition`'s arrays: the joint vector and one flag a block."""
    return self.dim + len(self.modalities)

  def encode(self, values: Dict[str, jnp.ndarray]) -> jnp.ndarray:
    """{name: values (B, ...)} -> z (B, dim)."""
    return jnp.concatenate([m.encode(values[m.name]) for m in self.modalities], -1)

  def split(self, z: jnp.ndarray) -> Dict[str, jnp.ndarray]:
    """z (B, dim) -> {name: its block (B, D_k)}."""
    out, start = {}, 0
    for m in self.modalities:
      out[m.name] = z[:, start:start + m.dim]
      start += m.dim
    return out

  def decode(self, z: jnp.ndarray) -> Dict[str, jnp.ndarray]:
    """z (B, dim) -> {name: decoded values}."""
    return {m.name: m.decode(block) for m, block in zip(self.modalities, self.split(z).values())}

  def block_mask(self, observed: jnp.ndarray) -> jnp.ndarray:
    """observed (B, K) in {0, 1} -> (B, dim): each block's flag repeated over it."""
    return jnp.concatenate([jnp.repeat(observed[:, k:k + 1], m.dim, -1)
                            for k, m in enumerate(self.modalities)], -1)


def observation_condition(space: JointSpace, z: jnp.ndarray,
                          observed: jnp.ndarray) -> jnp.ndarray:
  """The model's condition (B, space.cond_dim): the observed blocks of z (B, dim), zero
  where a block is not observed, then the K flags observed (B, K) in {0, 1}."""
  observed = jnp.asarray(observed, z.dtype)
  return jnp.concatenate([z * space.block_mask(observed), observed], -1)


def given(space: JointSpace, batch: int, names: Sequence[str]) -> jnp.ndarray:
  """(B, K) flags observing the named modalities of every example (names () : joint)."""
  unknown = [n for n in names if n not in space.names]
  if unknown:
    raise ValueError(f"Unknown modalities {unknown}; the space has {list(space.names)}.")
  row = jnp.asarray([float(n in names) for n in space.names])
  return jnp.broadcast_to(row, (batch, len(space.names)))


def random_observation(key, space: JointSpace, batch: int, p_observe: float) -> jnp.ndarray:
  """(B, K) flags, each block observed independently with probability p_observe, except
  that at most K - 1 are: something is always left to generate (the all-observed task is
  drawn again as the all-unobserved one, which then comes with probability
  (1 - p)^K + p^K)."""
  observed = jax.random.bernoulli(key, p_observe, (batch, len(space.modalities)))
  everything = jnp.all(observed, -1, keepdims=True)
  return jnp.where(everything, False, observed).astype(jnp.float32)


__all__ = ["JointSpace", "Modality", "given", "image_modality", "label_modality",
           "observation_condition", "random_observation"]
