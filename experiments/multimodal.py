"""New kinds of data for diffusion: joint modalities, functions and counterfactuals.

build_multitask  "Diffusion Models for Multi-Task Generative Modeling" (Chen et al. 2024)
                 on the digits: an image and its label encoded into one shared space
                 (`diffjax.multitask`), one flow-matching model of the joint conditioned
                 on an observed subset of the modalities (drawn per example, each observed
                 with probability data.p_observe). Evaluation: `label_agreement` (the
                 digits classifier on joint samples' images against their generated
                 labels), `label_to_image_accuracy` (classifier on images generated for
                 given labels), `image_to_label_accuracy` (generated labels of held-out
                 test images) and `frechet_proxy_joint` (joint samples' images against the
                 test digits). data.modalities=image: the image-only model trained the
                 same way (`frechet_proxy_joint` only), the baseline of image quality.
build_ddmi       DDMI ("Domain-Agnostic Latent Diffusion Models for Synthesizing
                 High-Quality Implicit Neural Representations", Park et al. 2024) on the
                 digits as functions on [0, 1]^2: phase "autoencoder" fits a VAE from
                 pixel images to hierarchical positional embeddings and a decoder of the
                 function at any coordinates (`diffjax.implicit`); phase "diffusion" fits
                 a flow-matching model of the standardised embeddings. Evaluation renders
                 sampled functions at each of eval.resolutions (`frechet_proxy_<R>`) and
                 the decoder's grid error on test digits (`grid_rmse`); --mode=sample also evaluates
                 the samples at ddmi.coordinates_file's points (.npy (P, 2)).
build_causal     CausalDiffAE ("Causal Diffusion Autoencoders: Toward Counterfactual
                 Generation via Diffusion Probabilistic Models", Komanduri et al. 2024) on
                 a simulated scene with a known mechanism (`diffjax.data.causal_scene`,
                 size -> brightness, position a second root): an encoder to the three
                 factors aligned to their labels, a flow-matching decoder conditioned on
                 them, mechanisms fitted on the encoded factors of causal.edges
                 (`diffjax.causal`). Evaluation intervenes on each factor of held-out
                 scenes (do(factor = another scene's value)) and decodes the inverted
                 noise under the propagated factors (causal) or under the intervened
                 factor alone (baseline: no mechanism), measuring every factor of the
                 counterfactuals with regressors trained on real scenes:
                 `error_<model>_do_<factor>_<measured>` against the true counterfactual
                 and `change_..._<measured>` from the factual reconstruction, in units of
                 the factor's standard deviation; `change_true_...` the true changes.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax import causal, implicit, multitask
from diffjax.data.causal_scene import FACTORS, causal_scene, scene_counterfactual
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.errors import ConfigError
from diffjax.image_metrics import digits_classifier, digits_frechet_distance
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_record
from diffjax.train import Phase, Task, parallel
from diffjax.train.validation import Key, check_keys

MULTITASK_MODALITIES = ("image,label", "image")
MULTITASK_KEYS = (
    Key("data.modalities", "name", names=lambda: MULTITASK_MODALITIES),
    Key("data.p_observe", "float", 0.0, 1.0, open_high=True,
        meaning="probability that a modality is given in training"),
    Key("data.label_scale", "float", 0.0, open_low=True),
    Key("eval.num_samples", "int", 10, meaning="samples per task"),
)


def digits_levels(split):
  """(levels (N, 8, 8, 1) float32 in [0, 16], labels (N,) int32) of a digits split."""
  images, labels = digits_arrays(split)
  return jnp.asarray(images, jnp.float32), jnp.asarray(labels)


def draw_digits(levels, labels, key, n):
  """n digits drawn with replacement, dequantised with fresh uniform noise: (images
  (n, 8, 8, 1) in [-1, 1), labels (n,))."""
  k_pick, k_noise = jax.random.split(key)
  idx = jax.random.randint(k_pick, (n,), 0, levels.shape[0])
  noise = jax.random.uniform(k_noise, (n, 8, 8, 1))
  return 2.0 * (levels[idx] + noise) / DIGITS_NUM_LEVELS - 1.0, labels[idx]


def build_multitask(config):
  check_keys(config, MULTITASK_KEYS)
  data = config.data
  modalities = [multitask.image_modality((8, 8, 1))]
  if data.modalities == "image,label":
    modalities.append(multitask.label_modality(10, data.label_scale))
  space = multitask.JointSpace(tuple(modalities))
  joint = len(modalities) > 1
  spec = DataSpec((space.dim,), cond_dim=space.cond_dim if joint else 0)
  if joint and config.model.get("cond_dim", 0) != space.cond_dim:
    raise ConfigError(f"model.cond_dim={config.model.get('cond_dim', 0)}: the joint model "
                      f"is conditioned on the observed modalities, {space.cond_dim} values.")
  pipeline = build_pipeline(config, spec)
  levels, labels = digits_levels("train")
  test_levels, test_labels = digits_arrays("test")
  test_images = dequantize(test_levels, DIGITS_NUM_LEVELS)
  batch_size, n = config.train.batch_size, config.eval.num_samples

  def loss(params, key, shard, step):
    del step
    k_data, k_observe, k_loss = jax.random.split(key, 3)
    images, classes = draw_digits(levels, labels, k_data, batch_size)
    z = space.encode({"image": images, "label": classes})
    if not joint:
      return pipeline.loss(params, k_loss, shard, z)
    observed = multitask.random_observation(k_observe, space, batch_size, data.p_observe)
    return pipeline.loss(params, k_loss, shard, z,
                         multitask.observation_condition(space, z, observed))

  @jax.jit
  def generate(params, key, z_given, observed):
    cond = multitask.observation_condition(space, z_given, observed) if joint else None
    return pipeline.generate(params, key, z_given.shape[0], labels=cond).x

  def decoded(params, key, z_given, names):
    z = generate(params, key, jnp.asarray(z_given),
                 multitask.given(space, z_given.shape[0], names))
    return {k: np.asarray(parallel.to_host(v)) for k, v in space.decode(z).items()}

  classifier = digits_classifier()
  wanted = np.arange(n) % 10
  pick = np.arange(n) % len(test_labels)

  def evaluate(params, key):
    keys = jax.random.split(key, 3)
    out = decoded(params, keys[0], np.zeros((n, space.dim), np.float32), ())
    values = {"frechet_proxy_joint": float(digits_frechet_distance(
        out["image"], test_images, classifier))}
    if joint:
      values["label_agreement"] = classifier.accuracy(out["image"], out["label"])
      z = space.encode({"image": jnp.zeros((n, 8, 8, 1)), "label": jnp.asarray(wanted)})
      out = decoded(params, keys[1], z, ("label",))
      values["label_to_image_accuracy"] = classifier.accuracy(out["image"], wanted)
      values["frechet_proxy_label_to_image"] = float(digits_frechet_distance(
          out["image"], test_images, classifier))
      z = space.encode({"image": jnp.asarray(test_images[pick]),
                        "label": jnp.zeros(n, jnp.int32)})
      out = decoded(params, keys[2], z, ("image",))
      values["image_to_label_accuracy"] = float(np.mean(out["label"] == test_labels[pick]))
      values["classifier_accuracy_test"] = classifier.accuracy(test_images[pick],
                                                               test_labels[pick])
    return values, {}

  def sample(params, key):
    return decoded(params, key, np.zeros((n, space.dim), np.float32), ()), {}

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=batch_size, record=pipeline_record(pipeline))


DDMI_KEYS = (
    Key("ddmi.resolutions", "ints", 1, meaning="embedding grid resolutions, coarse first"),
    Key("ddmi.channels", "ints", 1, meaning="channels of each embedding grid"),
    Key("ddmi.autoencoder_steps", "int", 1),
    Key("ddmi.diffusion_steps", "int", 1),
    Key("ddmi.beta", "float", 0.0, meaning="KL weight of the VAE"),
    Key("ddmi.random_points", "int", 0, meaning="random coordinates per image and step"),
    Key("ddmi.decoder_width", "int", 1, meaning="width of the function decoder's MLP"),
    Key("eval.resolutions", "ints", 1, meaning="render resolutions of sampled functions"),
    Key("eval.num_samples", "int", 2, meaning="sampled functions scored"),
)


def _query_points(config):
  """The user's query coordinates (ddmi.coordinates_file, .npy (P, 2)) or None."""
  path = config.ddmi.get("coordinates_file", "")
  if not path:
    return None
  try:
    points = np.load(path)
  except (OSError, ValueError) as error:
    raise ConfigError(f"ddmi.coordinates_file={path} cannot be read as a .npy array: "
                      f"{error}") from None
  return jnp.asarray(implicit.check_coordinates(points, "ddmi.coordinates_file"))


def build_ddmi(config):
  check_keys(config, DDMI_KEYS)
  options = config.ddmi
  if len(options.resolutions) != len(options.channels):
    raise ConfigError(f"ddmi.resolutions={tuple(options.resolutions)} and ddmi.channels="
                      f"{tuple(options.channels)} must have one entry per level.")
  levels = tuple(zip(options.resolutions, options.channels))
  queries = _query_points(config)
  autoencoder = implicit.FunctionAutoencoder(levels=levels,
                                            decoder_width=options.decoder_width)
  size = implicit.latent_size(levels)
  pipeline = build_pipeline(config, DataSpec((size,)))
  levels_train, labels = digits_levels("train")
  train_images = dequantize(np.asarray(levels_train), DIGITS_NUM_LEVELS)
  test_levels, _ = digits_arrays("test")
  test_images = dequantize(test_levels, DIGITS_NUM_LEVELS)
  batch_size, n = config.train.batch_size, config.eval.num_samples

  def init_params(key):
    k_ae, k_model = jax.random.split(key)
    return {"autoencoder": implicit.init_autoencoder(autoencoder, k_ae, (8, 8, 1)),
            "diffusion": pipeline.model.init(k_model)}

  encode = jax.jit(lambda p, x: autoencoder.apply({"params": p}, x, method="encode")[0])

  def latent_statistics(params, key=None):
    """Mean and std (1, L) of the training digits' posterior means."""
    del key
    z = encode(params["autoencoder"], jnp.asarray(train_images))
    return {"mean": z.mean(0, keepdims=True), "std": z.std(0, keepdims=True) + 1e-4}

  def autoencoder_phase_loss(params, key, shard, step, batch, context):
    del step, batch, context
    k_data, k_loss = jax.random.split(key)
    images, _ = draw_digits(levels_train, labels, k_data, batch_size)
    return implicit.autoencoder_loss(autoencoder, params["autoencoder"], k_loss,
                                     shard(images), options.random_points, options.beta)

  def diffusion_phase_loss(params, key, shard, step, batch, context):
    del step, batch
    k_data, k_loss = jax.random.split(key)
    images, _ = draw_digits(levels_train, labels, k_data, batch_size)
    z = autoencoder.apply({"params": params["autoencoder"]}, images, method="encode")[0]
    z = (jax.lax.stop_gradient(z) - context["mean"]) / context["std"]
    return pipeline.loss(params["diffusion"], k_loss, shard, z)

  only = lambda part: (lambda params: {k: k == part for k in params})
  phases = (Phase("autoencoder", options.autoencoder_steps, autoencoder_phase_loss,
                  only("autoencoder")),
            Phase("diffusion", options.diffusion_steps, diffusion_phase_loss,
                  only("diffusion"), prepare=latent_statistics))

  @jax.jit
  def sampled_embeddings(params, key, stats):
    z = pipeline.generate(params["diffusion"], key, n).x
    return z * stats["std"] + stats["mean"]

  def sampled(params, key):
    stats = latent_statistics(params)
    return sampled_embeddings(params, key, stats)

  classifier = digits_classifier()

  def evaluate(params, key):
    z = sampled(params, key)
    values = {}
    for r in config.eval.resolutions:
      images = np.asarray(implicit.render(autoencoder, params["autoencoder"], z, r))
      values[f"frechet_proxy_{r}"] = float(digits_frechet_distance(
          np.clip(images, -1, 1), test_images, classifier))
    recon = implicit.render(autoencoder, params["autoencoder"],
                            encode(params["autoencoder"], jnp.asarray(test_images)), 8)
    values["grid_rmse"] = float(np.sqrt(np.mean((np.asarray(recon) - test_images) ** 2)))
    values["frechet_proxy_reconstruction"] = float(digits_frechet_distance(
        np.clip(np.asarray(recon), -1, 1), test_images, classifier))
    return values, {}

  def sample(params, key):
    z = sampled(params, key)
    out = {f"images_{r}": np.asarray(implicit.render(autoencoder, params["autoencoder"], z, r))
           for r in config.eval.resolutions}
    if queries is not None:
      out["query_coordinates"] = np.asarray(queries)
      out["query_values"] = np.asarray(implicit.decode_batch(
          autoencoder, params["autoencoder"], z, queries))[..., 0]
    return out, {}

  return Task(init_params=init_params, loss=None, evaluate=evaluate, sample=sample,
              batch_size=batch_size, phases=phases, record=pipeline_record(pipeline))


CAUSAL_KEYS = (
    Key("data.num_train", "int", 16, meaning="training scenes"),
    Key("data.num_test", "int", 4, meaning="held-out scenes intervened on"),
    Key("causal.alignment", "float", 0.0, open_low=True, meaning="weight of the factor loss"),
    Key("causal.degree", "int", 1, meaning="polynomial degree of fitted mechanisms"),
    Key("causal.inversion_steps", "int", 1, meaning="ODE steps of inversion and decoding"),
)


def _factor_regressors(seed, num_train):
  """One regressor of each scene factor from pixels (an sklearn MLP on fresh scenes) and
  their R^2 on other fresh scenes."""
  from sklearn.neural_network import MLPRegressor  # pylint: disable=g-import-not-at-top
  images, factors, _ = causal_scene(seed + 7, num_train)
  test_images, test_factors, _ = causal_scene(seed + 8, 500)
  regressor = MLPRegressor(hidden_layer_sizes=(128,), max_iter=300, random_state=seed)
  mean, std = factors.mean(0), factors.std(0)
  regressor.fit(images.reshape(num_train, -1), (factors - mean) / std)
  predict = lambda x: regressor.predict(np.asarray(x).reshape(len(x), -1)) * std + mean
  residual = ((predict(test_images) - test_factors) ** 2).sum(0)
  r2 = 1 - residual / ((test_factors - test_factors.mean(0)) ** 2).sum(0)
  return predict, r2


def build_causal(config):
  check_keys(config, CAUSAL_KEYS)
  graph = causal.causal_graph(FACTORS, tuple(config.causal.edges))
  pipeline = build_pipeline(config, DataSpec((64,), cond_dim=len(FACTORS)))
  data = config.data
  images, factors, _ = causal_scene(config.seed, data.num_train)
  test_images, test_factors, test_u = causal_scene(config.seed + 1, data.num_test)
  mean, std = factors.mean(0), factors.std(0)
  images, targets = jnp.asarray(images), jnp.asarray((factors - mean) / std)
  encoder = causal.FactorEncoder(len(FACTORS))
  batch_size, steps = config.train.batch_size, config.causal.inversion_steps

  def init_params(key):
    k_enc, k_model = jax.random.split(key)
    return {"encoder": encoder.init(k_enc, images[:1])["params"],
            "diffusion": pipeline.model.init(k_model)}

  def loss(params, key, shard, step):
    del step
    k_pick, k_loss = jax.random.split(key)
    idx = jax.random.randint(k_pick, (batch_size,), 0, images.shape[0])
    x = shard(images[idx])
    z = encoder.apply({"params": params["encoder"]}, x)
    diffusion, aux = pipeline.loss(params["diffusion"], k_loss, shard,
                                   x.reshape(batch_size, 64), jax.lax.stop_gradient(z))
    align = causal.alignment_loss(z, targets[idx])
    return diffusion + config.causal.alignment * align, {**aux, "alignment": align}

  encode = jax.jit(lambda p, x: encoder.apply({"params": p}, x))
  counterfactual = jax.jit(lambda p, x, z, z_cf: causal.counterfactual(
      pipeline, p, x.reshape(x.shape[0], 64), z, z_cf, steps).reshape(x.shape))
  regress, regressor_r2 = _factor_regressors(config.seed, min(4000, data.num_train))
  swap = np.random.default_rng(config.seed + 2).permutation(data.num_test)

  def evaluate(params, key):
    del key
    scm = causal.fit_mechanisms(graph, encode(params["encoder"], images),
                                config.causal.degree)
    x = jnp.asarray(test_images)
    z = encode(params["encoder"], x)
    reconstruction = np.asarray(counterfactual(params["diffusion"], x, z, z))
    values = {f"regressor_r2_{n}": float(r) for n, r in zip(FACTORS, regressor_r2)}
    values["reconstruction_rmse"] = float(np.sqrt(np.mean((reconstruction - test_images) ** 2)))
    factual = regress(reconstruction)
    for i, name in enumerate(FACTORS):
      true_value = test_factors[swap, i]
      value = jnp.asarray((true_value - mean[i]) / std[i])
      truth = scene_counterfactual(test_factors, test_u, i, true_value)
      for model, z_cf in (("causal", scm.intervene(z, i, value)),
                          ("baseline", z.at[:, i].set(value))):
        predicted = regress(np.asarray(counterfactual(params["diffusion"], x, z, z_cf)))
        for j, measured in enumerate(FACTORS):
          tag = f"{model}_do_{name}_{measured}"
          values[f"error_{tag}"] = float(np.mean(np.abs(predicted[:, j] - truth[:, j])) / std[j])
          values[f"change_{tag}"] = float(np.mean(np.abs(predicted[:, j] - factual[:, j])) /
                                          std[j])
      for j, measured in enumerate(FACTORS):
        values[f"change_true_do_{name}_{measured}"] = float(
            np.mean(np.abs(truth[:, j] - test_factors[:, j])) / std[j])
    return values, {}

  def sample(params, key):
    del key
    x = jnp.asarray(test_images)
    z = encode(params["encoder"], x)
    scm = causal.fit_mechanisms(graph, encode(params["encoder"], images), config.causal.degree)
    value = jnp.asarray((test_factors[swap, 0] - mean[0]) / std[0])
    return {"factual": test_images, "counterfactual_do_size": np.asarray(counterfactual(
        params["diffusion"], x, z, scm.intervene(z, 0, value)))}, {}

  return Task(init_params=init_params, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=batch_size, record=pipeline_record(pipeline))
