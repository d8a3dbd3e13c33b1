"""Generative models of images: the shared pipeline (`diffjax.pipeline`) on host-fed
batches of an image dataset (tfds or the bundled 8x8 digits); evaluated by sample grids,
bits/dim through the probability-flow ODE, the dataset's own sample metrics
(`diffjax.image_metrics.dataset_metrics`: on the digits a proxy Fréchet distance and class
accuracy) and, given InceptionV3 weights (eval.inception_weights), Inception FID against
the test split.

Config sections read here: data (name, image_size, data_dir, random_flip), sample, eval;
the pipeline reads the rest.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, image_plots, likelihood
from diffjax.data import ImageStream, load_image_dataset
from diffjax.data.images import dequantize
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_record
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

IMAGE_KEYS = (Key("data.image_size", "int", 0, meaning="0: the dataset's own size"),
              Key("eval.bpd_examples", "int", 0, meaning="0: no bits/dim"),
              Key("eval.bpd_steps", "int", 1))


def build_task(config) -> Task:
  """Builds the image task; a missing dataset, an unknown name or an invalid value fails
  before training."""
  check_keys(config, IMAGE_KEYS)
  load = functools.partial(load_image_dataset, config.data.name,
                           image_size=config.data.image_size, data_dir=config.data.data_dir)
  train_source = load("train")
  spec = DataSpec(tuple(train_source.image_shape), train_source.num_classes)
  pipeline = build_pipeline(config, spec)
  path = pipeline.path
  source_log_prob = (path.source_log_prob if path.one_sided
                     else likelihood.standard_normal_log_prob)
  stream = ImageStream(train_source, config.train.batch_size, seed=config.seed,
                       random_flip=config.data.random_flip, dequantize=True)

  def loss(params, key, shard, step, batch):
    del step
    return pipeline.loss(params, key, shard, batch["image"], batch["label"])

  num_images = config.eval.num_samples
  labels = (jnp.arange(num_images) % pipeline.num_classes if pipeline.conditional
            else None)

  @jax.jit
  def generate(params, key):
    result = pipeline.generate(params, key, num_images, labels)
    return jnp.clip(result.x, -1.0, 1.0), result.nfe

  test_levels = lambda count: load("test").first_levels(count)

  test_images = test_levels(config.eval.bpd_examples) if config.eval.bpd_examples else None
  inception_params = None
  if config.eval.get("inception_weights"):  # Fails here, before training, if unreadable.
    inception_params = image_metrics.inception_weights(config.eval.inception_weights)
    fid_reference = functools.cache(lambda: image_metrics.inception_statistics(
        dequantize(test_levels(num_images), train_source.num_levels), inception_params))

  @jax.jit
  def bits_per_dim(params, key):
    k_deq, k_probe = jax.random.split(key)
    velocity = pipeline.fields(params).velocity   # The unconditional model's likelihood.
    log_prob = lambda x: likelihood.log_likelihood(
        velocity, x, source_log_prob=source_log_prob, key=k_probe, divergence="hutchinson",
        solver="heun", num_steps=config.eval.bpd_steps)[0]
    return jnp.mean(likelihood.bits_per_dim(log_prob, k_deq, test_images,
                                            num_bins=train_source.num_levels))

  def evaluate(params, key):
    images, nfe = generate(params, key)
    images = parallel.to_host(images)
    values = {"nfe": int(parallel.to_host(nfe))}
    values.update(image_metrics.dataset_metrics(
        config.data.name, images, None if labels is None else np.asarray(labels)))
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

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              record=pipeline_record(pipeline),
              batch_size=config.train.batch_size, data=stream.iterate)


