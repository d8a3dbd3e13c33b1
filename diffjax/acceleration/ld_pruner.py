"""LD-Pruner: structured pruning of a DiT scored by the change in its output distribution.

"LD-Pruner: Efficient Pruning of Latent Diffusion Models using Task-Agnostic Insights"
(Castells et al. 2024): remove one operator at a time, measure how far the network's
outputs move as a distribution (not against any task's metric), and prune the operators
that move them least. The score of an operator, over a calibration set of outputs Y (N,
...) of the original network and Y' of the network without it, is

  score = || mean_N(Y) - mean_N(Y') ||_2 + || std_N(Y) - std_N(Y') ||_2

(per-dimension mean and standard deviation over the calibration set; the paper compares
them in the latent space of generated samples; here the calibration set is the network's
output at draws (x_t, t, label) along the training path, one call per operator, which
keeps scoring one forward pass per candidate). Operators of the DiT (`diffjax.models.
transformer`):

  blocks     block i removed: its two adaLN gates zeroed, so x + gate * f(x) = x exactly
  channels   hidden unit j of block i's MLP removed: row j of its output projection
             zeroed (the unit's only path forward)

Baselines score the same operators by weight magnitude (a block: the L2 norm of all its
kernels; a channel: ||W_in[:, j]|| ||W_out[j, :]||) or at random. `prune` keeps the
highest-scoring blocks and, in every kept block, the same number of highest-scoring
channels, and returns the smaller parameter tree that `dit(depth=kept blocks,
mlp_ratio=kept channels / hidden_dim)` builds and loads: masked and removed networks agree
(to float summation order), and keeping everything returns the tree unchanged
(tests/test_acceleration_ld_pruner.py).

Shapes: a DiT of depth L, width D, MLP width H = int(mlp_ratio D): block i's MLP kernels
DiTBlock_i/Dense_3 (D, H) and Dense_4 (H, D); its modulation DiTBlock_i/Dense_0 (D, 6 D)
whose output slices [2D, 3D) and [5D, 6D) are the gates.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError

SCORES = ("ld", "magnitude", "random")


def check_score(score):
  if score not in SCORES:
    raise ConfigError(f"Unknown LD-Pruner score {score!r}; valid: {', '.join(SCORES)}.")
  return score


def _blocks(params):
  names = sorted((k for k in params if k.startswith("DiTBlock_")),
                 key=lambda k: int(k.rsplit("_", 1)[1]))
  return names


def mlp_width(params):
  return params["DiTBlock_0"]["Dense_3"]["kernel"].shape[1]


def mask_params(params, block_mask=None, channel_mask=None):
  """The parameters of the network with blocks (block_mask (L,), 0: removed) and MLP
  channels (channel_mask (L, H), 0: removed) switched off, same tree and shapes."""
  params = dict(params)
  for i, name in enumerate(_blocks(params)):
    block = jax.tree.map(lambda p: p, params[name])
    if block_mask is not None:
      d = block["Dense_0"]["kernel"].shape[0]
      gates = np.zeros(6 * d, bool)
      gates[2 * d:3 * d] = gates[5 * d:6 * d] = True
      keep = jnp.where(jnp.asarray(gates), block_mask[i], 1.0)
      block["Dense_0"] = {"kernel": block["Dense_0"]["kernel"] * keep[None, :],
                          "bias": block["Dense_0"]["bias"] * keep}
    if channel_mask is not None:
      block["Dense_4"] = dict(block["Dense_4"],
                              kernel=block["Dense_4"]["kernel"] * channel_mask[i][:, None])
    params[name] = block
  return params


def ld_score(reference, outputs):
  """||mean(Y) - mean(Y')||_2 + ||std(Y) - std(Y')||_2 over the first axis (N, ...)."""
  n = reference.shape[0]
  ref, out = reference.reshape(n, -1), outputs.reshape(n, -1)
  return (jnp.linalg.norm(ref.mean(0) - out.mean(0))
          + jnp.linalg.norm(ref.std(0) - out.std(0)))


def block_scores(apply_fn, params, calibration, score, key=None):
  """(L,) importance of each block (higher: more important). apply_fn(params, x, t,
  cond) -> outputs; calibration: (x, t, cond) of the calibration set."""
  check_score(score)
  names = _blocks(params)
  depth = len(names)
  if score == "random":
    return jax.random.uniform(key, (depth,))
  if score == "magnitude":
    return jnp.stack([jnp.sqrt(sum(jnp.sum(leaf ** 2) for path, leaf in
                                   jax.tree_util.tree_leaves_with_path(params[name])
                                   if "kernel" in jax.tree_util.keystr(path)))
                      for name in names])
  reference = apply_fn(params, *calibration)
  eye = jnp.eye(depth)
  return jax.lax.map(lambda mask: ld_score(reference, apply_fn(
      mask_params(params, block_mask=mask), *calibration)), 1.0 - eye)


def channel_scores(apply_fn, params, calibration, score, key=None):
  """(L, H) importance of each MLP channel of each block (higher: more important)."""
  check_score(score)
  names = _blocks(params)
  depth, width = len(names), mlp_width(params)
  if score == "random":
    return jax.random.uniform(key, (depth, width))
  if score == "magnitude":
    return jnp.stack([jnp.linalg.norm(params[n]["Dense_3"]["kernel"], axis=0)
                      * jnp.linalg.norm(params[n]["Dense_4"]["kernel"], axis=1)
                      for n in names])
  reference = apply_fn(params, *calibration)
  ones = jnp.ones((depth, width))

  def one(index):
    mask = ones.at[index // width, index % width].set(0.0)
    return ld_score(reference, apply_fn(mask_params(params, channel_mask=mask),
                                        *calibration))
  return jax.lax.map(one, jnp.arange(depth * width)).reshape(depth, width)


def select(scores, keep):
  """Sorted indices of the `keep` highest scores along the last axis (traceable)."""
  return jnp.sort(jnp.argsort(-jnp.asarray(scores), axis=-1, stable=True)[..., :keep],
                  axis=-1)


def prune(params, kept_blocks, kept_channels):
  """The smaller tree: blocks kept_blocks (K sorted indices) renumbered DiTBlock_0..,
  each with the MLP channels kept_channels[i] ((L, k) indices, one row per original
  block). Other parameters unchanged. Traceable (indices may be traced arrays)."""
  names = _blocks(params)
  try:
    kept_channels = jnp.asarray(kept_channels)
  except ValueError:
    raise ValueError("Every block must keep the same number of MLP channels.") from None
  stacked = jax.tree.map(lambda *p: jnp.stack(p), *[params[name] for name in names])
  out = {k: v for k, v in params.items() if k not in names}
  for new in range(len(kept_blocks)):
    old = kept_blocks[new]
    block = jax.tree.map(lambda p: p[old], stacked)
    keep = kept_channels[old]
    block["Dense_3"] = {"kernel": block["Dense_3"]["kernel"][:, keep],
                        "bias": block["Dense_3"]["bias"][keep]}
    block["Dense_4"] = dict(block["Dense_4"], kernel=block["Dense_4"]["kernel"][keep])
    out[f"DiTBlock_{new}"] = block
  return out


def pruned_width(hidden_dim, mlp_ratio):
  """The MLP width the DiT builds for mlp_ratio: int(mlp_ratio hidden_dim)."""
  return int(mlp_ratio * hidden_dim)


def check_target(source_model, target_model):
  """The pruned architecture must be the source's with depth and mlp_ratio no larger;
  returns (depth, MLP width) of the target. ConfigError otherwise."""
  source, target = dict(source_model), dict(target_model)
  for key in sorted(set(source) | set(target)):
    if key in ("depth", "mlp_ratio"):
      continue
    if source.get(key) != target.get(key):
      raise ConfigError(f"model.{key}={target.get(key)!r} differs from the source run's "
                        f"{source.get(key)!r}; LD-Pruner changes only model.depth and "
                        "model.mlp_ratio.")
  d = source["hidden_dim"]
  depth, new_depth = source.get("depth", 12), target.get("depth", 12)
  width = pruned_width(d, source.get("mlp_ratio", 4.0))
  new_width = pruned_width(d, target.get("mlp_ratio", 4.0))
  if not 1 <= new_depth <= depth:
    raise ConfigError(f"model.depth={new_depth} must be in [1, {depth}] (the source run's "
                      "depth) to prune it.")
  if not 1 <= new_width <= width:
    raise ConfigError(f"model.mlp_ratio={target.get('mlp_ratio')!r} gives an MLP width of "
                      f"{new_width}; it must be in [1, {width}] (the source run's width) "
                      f"to prune it, i.e. mlp_ratio in (0, {source.get('mlp_ratio', 4.0)}].")
  return new_depth, new_width


def ld_prune(apply_fn, params, calibration, depth, width, score, key):
  """(pruned params, kept blocks, kept channels): blocks scored and `depth` kept, then in
  each kept block `width` channels kept, by `score` (SCORES). Traceable."""
  k_blocks, k_channels = jax.random.split(key)
  blocks = select(block_scores(apply_fn, params, calibration, score, k_blocks), depth)
  channels = select(channel_scores(apply_fn, params, calibration, score, k_channels), width)
  return prune(params, blocks, channels), blocks, channels


def parameter_count(params):
  return int(sum(np.prod(np.shape(p)) for p in jax.tree.leaves(params)))
