"""Diffusion with Forward Models on the digits (family `dfm`,
`diffjax.plug_and_play.forward_models`).

dfm.forward_model = "half_masks": every training digit is seen only as two observations
through random half masks (left, right, top or bottom; the context empty with probability
dfm.context_dropout), and the denoiser (a time-conditioned MLP on the stacked noisy
target, its mask, the context and its mask) is trained by DFM's loss on the target
observation. "complete": the same network on complete digits (every pixel the target, the
context empty), the model trained on complete data. Evaluation: eval.num_samples full
signals with an empty context (half_masks: a random half as the target observation) in
eval.num_steps DDIM steps, and the proxy Fréchet distance to the test digits
(`frechet_proxy_samples`), beside that of the observations themselves (test digits through
random half masks, `frechet_proxy_observations`); a sample grid.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, image_plots
from diffjax.data import ImageStream, load_image_dataset
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.errors import ConfigError
from diffjax.models.mlp import TimeMLP
from diffjax.paths import build_path
from diffjax.plug_and_play.forward_models import dfm_loss, dfm_sample, half_masks
from diffjax.registry import Registry
from diffjax.train import Task
from diffjax.train.validation import Key, check_keys


def _half_mask_draws(masks, key, n, context_dropout):
  """Random (target, context) masks: a random half each, the context empty with
  probability context_dropout."""
  k_t, k_c, k_d = jax.random.split(key, 3)
  target = masks[jax.random.randint(k_t, (n,), 0, 4)]
  context = masks[jax.random.randint(k_c, (n,), 0, 4)]
  keep = jax.random.uniform(k_d, (n, 1, 1, 1)) >= context_dropout
  return target, context * keep


def _complete_draws(masks, key, n, context_dropout):
  del key, context_dropout
  full = jnp.ones((n,) + masks.shape[1:])
  return full, jnp.zeros_like(full)


# name -> draw(masks, key, n, context_dropout) -> (target masks, context masks) (n, H, W, C).
FORWARD_MODELS = Registry("forward model")
FORWARD_MODELS.register("half_masks", _half_mask_draws)
FORWARD_MODELS.register("complete", _complete_draws)

DFM_KEYS = (
    Key("dfm.forward_model", "name", names=FORWARD_MODELS.names),
    Key("dfm.context_dropout", "float", 0.0, 1.0),
    Key("dfm.width", "int", 1), Key("dfm.depth", "int", 1),
    Key("eval.num_samples", "int", 2), Key("eval.num_steps", "int", 1),
)


def build_dfm(config) -> Task:
  """Builds the task; bad values fail here, before any workdir is touched."""
  check_keys(config, DFM_KEYS)
  source = load_image_dataset(config.data.name, image_size=config.data.image_size,
                              data_dir=config.data.data_dir, split="train")
  shape = tuple(source.image_shape)
  if shape[0] % 2 or shape[1] % 2:
    raise ConfigError(f"Half masks need an even image size; got {shape}.")
  path = build_path(config.path.name)
  if path.gaussian is None:
    raise ConfigError(f"DFM runs DDIM on observations: path.name must be a Gaussian path; "
                      f"got {config.path.name!r}.")
  draw_masks = FORWARD_MODELS.get(config.dfm.forward_model)
  masks = half_masks(shape)
  size = int(np.prod(shape))
  module = TimeMLP(out_dim=size, width=config.dfm.width, depth=config.dfm.depth)
  stream = ImageStream(source, config.train.batch_size, seed=config.seed,
                       random_flip=False, dequantize=True)

  def denoise(params, inputs, tau):
    out = module.apply({"params": params}, inputs.reshape(inputs.shape[0], -1), tau)
    return out.reshape((inputs.shape[0],) + shape)

  def init_params(key):
    return module.init(key, jnp.zeros((1, 4 * size)), jnp.zeros(()))["params"]

  def loss(params, key, shard, step, batch):
    del step
    x = shard(batch["image"])
    k_mask, k_loss = jax.random.split(key)
    target, context = draw_masks(masks, k_mask, x.shape[0], config.dfm.context_dropout)
    return dfm_loss(path, denoise, params, k_loss, x, target, context), {}

  n = config.eval.num_samples
  test, _ = digits_arrays("test")
  test = np.asarray(dequantize(test, DIGITS_NUM_LEVELS))
  reference = test

  @jax.jit
  def generate(params, key):
    k_mask, k_sample = jax.random.split(key)
    target, context = draw_masks(masks, k_mask, n, 1.0)   # An empty context.
    empty = jnp.zeros((n,) + shape)
    return jnp.clip(dfm_sample(path, denoise, params, k_sample, target, empty, context,
                               config.eval.num_steps), -1, 1)

  def evaluate(params, key):
    samples = np.asarray(generate(params, key))
    index = np.random.default_rng(0).integers(0, 4, len(test))
    observations = test * np.asarray(masks)[index]
    values = {"frechet_proxy_samples": float(image_metrics.digits_frechet_distance(
                  samples, reference)),
              "frechet_proxy_observations": float(image_metrics.digits_frechet_distance(
                  observations, reference))}
    figure = image_plots.sample_grid_figure(
        samples[:50], num_columns=10, title=f"DFM ({config.dfm.forward_model}): proxy FD "
        f"{values['frechet_proxy_samples']:.1f}")
    return values, {"samples": figure}

  def sample(params, key):
    return {"samples": np.asarray(generate(params, key))}, {}

  return Task(init_params=init_params, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate)
