"""ProSpect: a prompt spectrum, one condition embedding per interval of diffusion time,
learned from a few images of a concept with the network frozen ("ProSpect: Prompt Spectrum
for Attribute-Aware Personalization of Diffusion Models", Zhang et al., section 4).

A class-conditional network adds a label embedding table[y] (`embed_condition`: an
nn.Embed of K + 1 rows, the null class last) to its time embedding. A spectrum S (I, D)
replaces it by S[k(t)], where k(t) is the interval of t (`diffjax.adaptation.intervals`):
the network runs with the table's row `slot` set to S[k(t)] and the label `slot`, so no
layer changes. With every S[k] = table[y] this is ordinary conditioning on y.

  apply = spectrum_apply(pipeline.model.apply, boundaries, slot=10)
  fields = pipeline.objective.fields(apply, params, spectra)     # spectra (B, I, D)
  swapped = swap_intervals(spectra_a, spectra_b, intervals=(0,))  # B's embedding in I_0

ProSpect's reading of the spectrum: intervals near noise (t near 0 in diffjax's time)
decide layout and content, those near the data (t near 1) the fine detail and style, so
swapping the embeddings of chosen intervals transfers chosen attributes
(`swap_intervals`). `spectrum_loss` learns the spectra of several concepts at once: the
network's flow-matching loss on each concept's images, differentiated in the spectra only.
"""
import jax
import jax.numpy as jnp

from diffjax.adaptation.intervals import interval_index
from diffjax.errors import ConfigError
from diffjax.solvers import sample

# Where `diffjax.models.base.embed_condition` keeps the label table of a DiT or U-Net.
LABEL_TABLE = ("Embed_0", "embedding")


def label_table(params, table=LABEL_TABLE):
  """The (K + 1, D) label embedding table of a class-conditional network's parameters."""
  node = params
  for name in table:
    if not isinstance(node, dict) or name not in node:
      raise ConfigError(f"The network has no label embedding table at {'/'.join(table)} "
                        "(ProSpect needs a class-conditional network, model.num_classes > 0).")
    node = node[name]
  return node


def _with_row(params, table, slot, vector):
  """params with row `slot` of the label table set to vector (D,)."""
  def replace(node, depth):
    if depth == len(table):
      return node.at[slot].set(vector)
    return {**node, table[depth]: replace(node[table[depth]], depth + 1)}
  return replace(params, 0)


def spectrum_apply(model_apply, boundaries, slot, table=LABEL_TABLE):
  """apply(params, x (B, ...), t () or (B,), spectra (B, I, D)) -> the network's output
  with example b conditioned on spectra[b, k(t_b)] (module docstring). `slot`: the table
  row borrowed for it (any row; its own embedding is not used)."""
  def apply(params, x, t, spectra):
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), (x.shape[0],))
    vectors = jnp.take_along_axis(
        spectra, interval_index(t, boundaries)[:, None, None], axis=1)[:, 0]

    def one(vector, xb, tb):
      params_b = _with_row(params, table, slot, vector)
      return model_apply(params_b, xb[None], tb[None], jnp.full((1,), slot, jnp.int32))[0]
    return jax.vmap(one)(vectors, x, t)
  return apply


def class_spectra(params, labels, num_intervals, table=LABEL_TABLE):
  """(B, I, D) spectra with every interval the table embedding of labels (B,)."""
  rows = label_table(params, table)[jnp.asarray(labels)]
  return jnp.repeat(rows[:, None], num_intervals, axis=1)


def swap_intervals(spectra, others, intervals):
  """spectra (B, I, D) with the embeddings of `intervals` (indices) taken from others."""
  chosen = jnp.zeros(spectra.shape[1], bool).at[jnp.asarray(intervals, jnp.int32)].set(True)
  return jnp.where(chosen[None, :, None], others, spectra)


def spectrum_generate(pipeline, network_params, spectra, key, boundaries, slot,
                      table=LABEL_TABLE):
  """(B, *shape) samples of the pipeline's sampler with example b conditioned on the
  spectrum spectra[b] (B, I, D)."""
  k_source, k_sampler = jax.random.split(key)
  x0 = pipeline.source(k_source, spectra.shape[0])
  apply = spectrum_apply(pipeline.model.apply, boundaries, slot, table)
  fields = pipeline.objective.fields(apply, network_params, spectra)
  return sample(pipeline.solver, fields, pipeline.path, x0, k_sampler,
                num_steps=pipeline.num_steps, **dict(pipeline.sampler_options)).x


def spectrum_loss(pipeline, network_params, boundaries, slot, images, concepts,
                  batch_size, table=LABEL_TABLE):
  """The engine's loss(params, key, shard, step, batch) learning {"spectra": (C, I, D)}:
  each example is one of `images` (N, *shape) of concept concepts[n] (N,), noised on the
  pipeline's path at t ~ U(0, 1) and fitted by flow matching with the frozen network
  conditioned on its concept's spectrum."""
  apply = spectrum_apply(pipeline.model.apply, boundaries, slot, table)
  images, concepts = jnp.asarray(images), jnp.asarray(concepts, jnp.int32)
  path = pipeline.path

  def loss(params, key, shard, step, batch=None):
    del shard, step, batch
    k_draw, k_t, k_x0 = jax.random.split(key, 3)
    index = jax.random.randint(k_draw, (batch_size,), 0, images.shape[0])
    x1 = images[index]
    t = jax.random.uniform(k_t, (batch_size,))
    x0 = pipeline.source(k_x0, batch_size)
    xt = path.interpolate(t, x0, x1)
    target = path.conditional_velocity(t, x0, x1)
    spectra = params["spectra"][concepts[index]]
    fields = pipeline.objective.fields(apply, network_params, spectra)
    value = jnp.mean((fields.evaluate(xt, t).velocity - target) ** 2)
    return value, {"flow_matching": value}
  return loss
