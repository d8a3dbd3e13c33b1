"""Networks <-> vectors: the fixed flattening and per-layer normalisation of a weight zoo.

"Diffusion-Based Neural Network Weights Generation" (D2NWG, Soro et al., 2025, Sec. 3.1)
turns each trained network into one vector and normalises it layer by layer before
modelling the vectors. A `WeightLayout` records the shape of every tensor of one
architecture in a fixed order; `flatten_weights` / `unflatten_weights` map between the
parameters (`diffjax.weights.classifier`) and the (P,) vector exactly, and
`layer_groups` gives each tensor's slice of the vector (the groups of
`diffjax.data.normalisation.fit_group_standardizer`).
"""
from typing import NamedTuple, Sequence, Tuple

import jax.numpy as jnp
import numpy as np


class WeightLayout(NamedTuple):
  """shapes: ((W shape, b shape), ...) per layer, in order."""
  shapes: Tuple[Tuple[Tuple[int, ...], Tuple[int, ...]], ...]

  @property
  def size(self) -> int:
    """P, the number of parameters."""
    return sum(int(np.prod(s)) for layer in self.shapes for s in layer)

  @property
  def layer_sizes(self) -> Tuple[int, ...]:
    """(inputs, hidden..., classes) of the MLP."""
    return (self.shapes[0][0][0],) + tuple(w[1] for w, _ in self.shapes)


def weight_layout(params) -> WeightLayout:
  """The layout of one network's parameters ((W, b) pairs)."""
  return WeightLayout(tuple((tuple(w.shape), tuple(b.shape)) for w, b in params))


def layout_of_sizes(layer_sizes: Sequence[int]) -> WeightLayout:
  """The layout of an MLP of `layer_sizes` (inputs, hidden..., classes)."""
  return WeightLayout(tuple(((i, o), (o,)) for i, o in zip(layer_sizes[:-1],
                                                             layer_sizes[1:])))


def flatten_weights(params):
  """(W, b) pairs -> the (P,) vector [W0.ravel(), b0, W1.ravel(), b1, ...]."""
  return jnp.concatenate([t.reshape(-1) for layer in params for t in layer])


def unflatten_weights(vector, layout: WeightLayout):
  """The inverse of `flatten_weights`: (P,) -> (W, b) pairs of `layout`."""
  tensors, start = [], 0
  for layer in layout.shapes:
    pair = []
    for shape in layer:
      size = int(np.prod(shape))
      pair.append(vector[start:start + size].reshape(shape))
      start += size
    tensors.append(tuple(pair))
  return tuple(tensors)


def layer_groups(layout: WeightLayout) -> Tuple[slice, ...]:
  """One slice of the flat vector per tensor (W0, b0, W1, ...), in order."""
  groups, start = [], 0
  for layer in layout.shapes:
    for shape in layer:
      size = int(np.prod(shape))
      groups.append(slice(start, start + size))
      start += size
  return tuple(groups)
