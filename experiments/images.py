"""Generative models of images: host-fed batches (tfds or the bundled 8x8 digits) ->
path -> objective -> U-Net / transformer; evaluated by sample grids, bits/dim through the
probability-flow ODE, on the digits a proxy Fréchet distance and class accuracy, and, given
InceptionV3 weights (eval.inception_weights), Inception FID against the test split.

Config sections read here: data, path, objective, model, sample, eval (+ train.label_dropout).
"""
import functools
import inspect
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from diffjax import image_metrics, image_plots, likelihood
from diffjax.data import ImageStream, load_image_dataset
from diffjax.data.images import dequantize
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import SAMPLERS
from diffjax.train import Task, parallel
from experiments.common import component_options


def _load(config, split):
  options = {"image_size": config.data.image_size} if config.data.name == "digits" else {
      "data_dir": config.data.data_dir or None}
  return load_image_dataset(config.data.name, split, **options)


def _standard_normal_log_prob(x):
  flat = x.reshape(x.shape[0], -1)
  return -0.5 * jnp.sum(flat ** 2, -1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


def build_task(config) -> Task:
  """Builds the image task; a missing dataset or unknown name fails before training."""
  train_source = _load(config, "train")
  shape = tuple(train_source.image_shape)
  path = build_path(config.path.name, **component_options(config.path))
  objective = build_objective(config.objective.name, path,
                              **component_options(config.objective))
  model = build_model(config.model.name, shape, **component_options(config.model))
  sampler = SAMPLERS.get(config.sample.solver)
  sampler_options = component_options(config.sample, ("solver", "num_steps", "num_images"))
  num_classes = config.model.get("num_classes", 0)
  takes_dropout_key = "dropout_key" in inspect.signature(model.apply).parameters
  prior_sample = getattr(path, "prior_sample", None)
  source_log_prob = getattr(path, "prior_log_prob", _standard_normal_log_prob)
  stream = ImageStream(train_source, config.train.batch_size, seed=config.seed,
                       random_flip=config.data.random_flip, dequantize=True)

  def draw_source(key, n):
    if prior_sample is not None:
      return prior_sample(key, (n, *shape))
    return jax.random.normal(key, (n, *shape))

  def loss(params, key, shard, step, batch):
    del step
    k_source, k_drop, k_label, k_loss = jax.random.split(key, 4)
    x1 = shard(batch["image"])
    x0 = shard(draw_source(k_source, x1.shape[0]))
    cond = None
    if num_classes:
      # Classifier-free guidance training: a label is replaced by the null class
      # `num_classes` with probability label_dropout ("Classifier-Free Diffusion Guidance").
      drop = jax.random.bernoulli(k_label, config.train.label_dropout, batch["label"].shape)
      cond = jnp.where(drop, num_classes, batch["label"])
    apply = (functools.partial(model.apply, dropout_key=k_drop) if takes_dropout_key
             else model.apply)
    return objective.loss(apply, params, k_loss, x0, x1, cond)

  num_images = config.eval.num_samples
  labels = jnp.arange(num_images) % num_classes if num_classes else None

  @jax.jit
  def generate(params, key):
    k_source, k_sampler = jax.random.split(key)
    fields = objective.fields(model.apply, params, labels)
    result = sampler(fields, path, draw_source(k_source, num_images), k_sampler,
                     num_steps=config.sample.num_steps, **sampler_options)
    return jnp.clip(result.x, -1.0, 1.0), result.nfe

  def test_levels(count):
    test_source = _load(config, "test")
    return np.stack([np.asarray(test_source.records[i]["image"])
                     for i in range(min(count, len(test_source)))])

  test_images = test_levels(config.eval.bpd_examples) if config.eval.bpd_examples else None
  inception_params = None
  if config.eval.get("inception_weights"):  # Fails here, before training, if unreadable.
    inception_params = image_metrics.inception_weights(config.eval.inception_weights)
    fid_reference = functools.cache(lambda: image_metrics.inception_statistics(
        dequantize(test_levels(num_images), train_source.num_levels), inception_params))

  @jax.jit
  def bits_per_dim(params, key):
    k_deq, k_probe = jax.random.split(key)
    velocity = objective.fields(model.apply, params).velocity
    log_prob = lambda x: likelihood.log_likelihood(
        velocity, x, source_log_prob=source_log_prob, key=k_probe, divergence="hutchinson",
        solver="heun", num_steps=config.eval.bpd_steps)[0]
    return jnp.mean(likelihood.bits_per_dim(log_prob, k_deq, test_images,
                                            num_bins=train_source.num_levels))

  def evaluate(params, key):
    images, nfe = generate(params, key)
    images = parallel.to_host(images)
    values = {"nfe": int(parallel.to_host(nfe))}
    if config.data.name == "digits":
      reference, _ = image_metrics.digits_reference_images("test")
      values["digits_frechet_proxy"] = float(
          image_metrics.digits_frechet_distance(images, reference))
      if num_classes:
        values["digits_class_accuracy"] = float(
            image_metrics.digits_class_accuracy(images, np.asarray(labels)))
    if inception_params is not None:
      values["inception_fid"] = image_metrics.inception_fid(images, fid_reference(),
                                                            inception_params)
    if test_images is not None:
      values["bits_per_dim"] = float(parallel.to_host(bits_per_dim(params, key)))
    grid = image_plots.sample_grid_figure(images[:config.sample.num_images], num_columns=10,
                                          title=f"{config.data.name}, {config.sample.solver}")
    return values, {"samples": grid}

  def sample(params, key):
    images, _ = generate(params, key)
    images = parallel.to_host(images)
    grid = image_plots.sample_grid_figure(images[:config.sample.num_images], num_columns=10)
    arrays = {"samples": images}
    if labels is not None:
      arrays["labels"] = np.asarray(labels)
    return arrays, {"samples": grid}

  return Task(init_params=model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate)


def base_config() -> ml_collections.ConfigDict:
  """Defaults for image runs: the 8x8 digits, linear-path flow matching, a small DiT.

  On a CPU the DiT (matmuls) trains about 3x faster per step than a U-Net of similar
  quality (XLA's CPU convolutions are slow); on accelerators prefer the U-Net configs.
  """
  from diffjax.train.defaults import engine_config  # pylint: disable=g-import-not-at-top
  config = engine_config()
  config.experiment = "images"
  config.data = ml_collections.ConfigDict(dict(
      name="digits", image_size=8, data_dir="", random_flip=False))
  config.path = ml_collections.ConfigDict(dict(name="linear"))
  config.objective = ml_collections.ConfigDict(dict(name="flow_matching",
                                                    time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(
      name="dit", patch_size=2, hidden_dim=96, depth=4, num_heads=4, num_classes=10))
  config.train.update(batch_size=128, num_steps=3000, steps_per_call=50, log_every=250,
                      eval_every=1500, checkpoint_every=500)
  config.train.label_dropout = 0.1
  config.optim.update(learning_rate=2e-3, warmup_steps=200, ema_decay=0.999)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=20,
                                                 num_images=50))
  config.eval.update(num_samples=500, bpd_examples=64, bpd_steps=20)
  # InceptionV3 weights file (.npz or pytorch-fid's .pth; see diffjax/inception.py, never
  # downloaded): "" = off; else Inception FID of the num_samples samples against as many
  # test images (bin centres).
  config.eval.inception_weights = ""
  return config
