"""The two score networks of GDSS, for node features X and adjacency A, in flax.

Both see the noisy pair (X, A) and the node mask and predict the noise of their own
component, like GDSS without a time input ("Score-based Generative Modeling of Graphs via
the System of Stochastic Differential Equations", Jo, Lee & Hwang, Sec. 3.3 and App. C):

  node network (`gcn`)   H_0 = X, H_l = tanh(GCN_l(H_{l-1}, A)), output MLP([H_0, ..., H_L]);
  adjacency networks     channels A^(0) = [A, A^2, ..., A^c_init]; layer l maps node
                         features and C_in channels to C_out channels; the output is an MLP
                         over all channels of all layers at each node pair;
    `gmh`  graph multi-head attention (their ScoreNetworkA, after Baek et al.): per input
           channel, queries and keys from GCNs give the symmetric map
           mean_heads tanh(Q_h K_h^T / sqrt(d)); values from a GCN give new node features;
           the new channels are an MLP of [attention maps, old channels] at each pair;
    `gnn`  the same without attention: the new channels are an MLP of [H_i + H_j,
           H_i * H_j, old channels] (their GCN baseline).
GCN(H, A) = D^-1/2 (A + I) D^-1/2 H W + b with D the row sums of A + I clipped below at 1
(Kipf & Welling, eq. 2; A is continuous while noisy). Pair outputs are symmetrised and the
diagonal and padding are zeroed; node outputs are masked.

Shapes: x (B, N, F), adj (B, N, N), mask (B, N).
"""
import math
import flax.linen as nn
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.graphs.batch import pair_mask
from diffjax.registry import Registry

NODE_NETWORKS = Registry("graph node score network")
ADJACENCY_NETWORKS = Registry("graph adjacency score network")


def normalized_adjacency(adj):
  """(..., N, N) -> D^-1/2 (A + I) D^-1/2 with D = rowsum(A + I) clipped at 1."""
  n = adj.shape[-1]
  a = adj + jnp.eye(n, dtype=adj.dtype).reshape((1,) * (adj.ndim - 2) + (n, n))
  inv_sqrt = jnp.maximum(a.sum(-1), 1.0) ** -0.5
  return inv_sqrt[..., :, None] * a * inv_sqrt[..., None, :]


class ChannelGCN(nn.Module):
  """A GCN layer per adjacency channel: x (B, N, F), adj (B, C, N, N) -> (B, C, N,
  features), with separate weights per channel."""
  features: int

  @nn.compact
  def __call__(self, x, adj):
    c = adj.shape[1]
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform", in_axis=-2,
                                            out_axis=-1, batch_axis=(0,))
    w = self.param("kernel", init, (c, x.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros, (c, self.features))
    h = jnp.einsum("bnf,cfd->bcnd", x, w)
    return jnp.einsum("bcnm,bcmd->bcnd", normalized_adjacency(adj), h) + b[None, :, None]


class MLP(nn.Module):
  """Dense layers with ELU between them (GDSS's MLP)."""
  hidden: int
  out: int
  num_layers: int = 2

  @nn.compact
  def __call__(self, h):
    for _ in range(self.num_layers - 1):
      h = nn.elu(nn.Dense(self.hidden)(h))
    return nn.Dense(self.out)(h)


def _adjacency_powers(adj, num):
  powers = [adj]
  for _ in range(num - 1):
    powers.append(powers[-1] @ adj)
  return jnp.stack(powers, 1)                                   # (B, C, N, N)


@NODE_NETWORKS.register("gcn")
class NodeGCN(nn.Module):
  """GDSS's ScoreNetworkX (module docstring): (x, adj, mask) -> (B, N, F)."""
  depth: int = 3
  hidden: int = 32

  @nn.compact
  def __call__(self, x, adj, mask):
    hs = [x]
    h = x
    for _ in range(self.depth):
      h = jnp.tanh(ChannelGCN(self.hidden)(h, adj[:, None])[:, 0])
      hs.append(h)
    h = jnp.concatenate(hs, -1)
    out = MLP(2 * h.shape[-1], x.shape[-1], num_layers=3)(h)
    return out * mask[..., None]


class _PairLayer(nn.Module):
  """One layer of an adjacency network: (h (B, N, F), channels (B, C_in, N, N), mask) ->
  (h' (B, N, hidden), channels (B, out_channels, N, N))."""
  hidden: int
  out_channels: int
  attention: bool
  attention_dim: int = 32
  num_heads: int = 4
  num_linears: int = 2

  @nn.compact
  def __call__(self, h, channels, mask):
    c_in = channels.shape[1]
    width = 2 * max(c_in, self.out_channels)
    values = ChannelGCN(self.hidden)(h, channels)                     # (B, C, N, D)
    merged = jnp.moveaxis(values, 1, 2).reshape(h.shape[0], h.shape[1], -1)
    h_new = jnp.tanh(MLP(width, self.hidden)(merged) * mask[..., None])
    if self.attention:
      split = lambda a: a.reshape(a.shape[:3] + (self.num_heads, -1))
      q = split(ChannelGCN(self.attention_dim)(h, channels))
      k = split(ChannelGCN(self.attention_dim)(h, channels))
      scores = jnp.tanh(jnp.einsum("bcnhd,bcmhd->bchnm", q, k) / math.sqrt(self.hidden))
      maps = scores.mean(2)
      maps = 0.5 * (maps + jnp.swapaxes(maps, -1, -2))               # (B, C, N, N)
      pair_in = jnp.concatenate([maps, channels], 1)
    else:
      hi, hj = h_new[:, :, None, :], h_new[:, None, :, :]
      pair_in = jnp.concatenate([jnp.moveaxis(hi + hj, -1, 1),
                                 jnp.moveaxis(hi * hj, -1, 1), channels], 1)
    out = MLP(width, self.out_channels, self.num_linears)(jnp.moveaxis(pair_in, 1, -1))
    out = jnp.moveaxis(out, -1, 1)
    out = (out + jnp.swapaxes(out, -1, -2)) * pair_mask(mask)[:, None]
    return h_new, out


class AdjacencyNetwork(nn.Module):
  """GDSS's ScoreNetworkA (`attention`) or its GCN baseline; module docstring."""
  attention: bool
  num_layers: int = 5
  hidden: int = 32
  attention_dim: int = 32
  num_heads: int = 4
  num_linears: int = 2
  initial_channels: int = 2
  hidden_channels: int = 8
  final_channels: int = 4

  @nn.compact
  def __call__(self, x, adj, mask):
    channels = _adjacency_powers(adj, self.initial_channels)
    collected = [channels]
    h = x
    for layer in range(self.num_layers):
      out = self.final_channels if layer == self.num_layers - 1 else self.hidden_channels
      h, channels = _PairLayer(self.hidden, out, self.attention, self.attention_dim,
                               self.num_heads, self.num_linears)(h, channels, mask)
      collected.append(channels)
    pairs = jnp.moveaxis(jnp.concatenate(collected, 1), 1, -1)        # (B, N, N, C_all)
    score = MLP(2 * pairs.shape[-1], 1, num_layers=3)(pairs)[..., 0]
    return score * pair_mask(mask)


def _adjacency_factory(attention):
  def build(**options):
    dim, heads = options.get("attention_dim", 32), options.get("num_heads", 4)
    if attention and (heads < 1 or dim % heads):
      raise ConfigError(f"model.adj.attention_dim={dim} must split evenly over "
                        f"model.adj.num_heads={heads} attention heads.")
    return AdjacencyNetwork(attention=attention, **options)
  return build


ADJACENCY_NETWORKS.register("gmh", _adjacency_factory(True))
ADJACENCY_NETWORKS.register("gnn", _adjacency_factory(False))


def build_node_network(name: str, **options) -> nn.Module:
  return NODE_NETWORKS.get(name)(**options)


def build_adjacency_network(name: str, **options) -> nn.Module:
  return ADJACENCY_NETWORKS.get(name)(**options)

