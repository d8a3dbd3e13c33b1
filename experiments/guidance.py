"""Guidance demos on the digits: CFG vs CFG++ per scale, and inpainting by DPS.

The training is that of `experiments.images` (class-conditional with label dropout), so a
digits run trained with configs/guidance/digits.py serves every study; eval.study picks
what `--mode=eval` / the periodic evaluation measures (eval.* may change on a trained run):
  cfg_vs_cfgpp  for each scale of sample.guidance.cfg_scales (CFG, w) and cfgpp_scales
                (CFG++, lambda): the digits classifier's accuracy on class-conditional
                samples (`diffjax.image_metrics.digits_class_accuracy`) and a sample grid
                per method and scale (plots/cfg_w<w>_<step>.png, cfgpp_l<lambda>_...);
  inpainting    held-out test digits with a masked region (eval.mask: "right_half" or
                "centre"), restored by sample.guidance.method (dps or reconstruction)
                with the unconditional model: PSNR of the restored masked region, against
                a nearest-neighbour baseline (the training digit closest on the observed
                pixels, pasted into the hole); with eval.inpainting_draws = k > 1 also the
                PSNR of the mean of k draws per digit (an estimate of the posterior mean,
                which PSNR favours); a figure of observed / restored / truth.
  classifier    EluCD: the unconditional (null-class) model guided by a CLEAN-digits
                classifier (DigitsMLP trained with seed eval.guide_classifier_seed, its
                ReLUs replaced by softplus_beta, beta = sample.guidance.softplus_beta)
                applied to the denoised estimate (gradient through the denoiser, or at
                the estimate: sample.guidance.through), for each scale of
                sample.guidance.classifier_scales (tau1, ratio, amplitude from
                sample.guidance): accuracy of the real-digits classifier (seed 0, another
                network than the guiding one), of a 1-nearest-neighbour classifier in
                pixel space (no gradient to exploit) and the proxy Fréchet distance to
                the test digits, per scale; a grid per scale.
  cheaper_guidance  CFG, Adaptive Guidance (sample.guidance.threshold) and LinearAG
                (`diffjax.guidance.linear_ag`: coefficients fitted on
                sample.guidance.calibration_samples CFG trajectories from other draws,
                sample.guidance.exact_steps first steps exact) at the same scale
                sample.guidance.scale and steps: accuracy, 1-NN accuracy and proxy
                Fréchet distance, nfe_<method> as `sample` reports it (CFG: its batched
                calls on [x, x], 2 evaluations per example each; Adaptive Guidance and
                LinearAG: evaluations per example) and the wall time of one sample
                batch (seconds_<method>, median of 3, compiled).
`--mode=sample` samples with sample.guidance as configured (any method, any scale).

The family `noisy_classifier` (`build_noisy_classifier`) trains a noise-aware classifier
p_t(y | x_t) on the digits through the engine and guides a trained digits run with it.
"""
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, image_plots, runs
from diffjax.data import ImageStream, load_image_dataset
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.errors import ConfigError
from diffjax.guidance import (GUIDANCE_METHODS, classifier_log_prob, fit_linear_ag,
                              inpainting, noisy_classifier, noisy_classifier_loss, softplus_relu)
from diffjax.paths import build_path
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.restoration import (INPAINTING_MASKS, inpainting_mask,
                                 nearest_neighbour_fill, psnr)
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys
from configs.guidance.base import guidance_section
from experiments import images

STUDIES = ("cfg_vs_cfgpp", "inpainting", "classifier", "cheaper_guidance")
# Values the guidance studies read, checked before anything is built or written.
GUIDED_KEYS = (
    Key("eval.study", "name", names=lambda: STUDIES),
    Key("eval.mask", "name", names=INPAINTING_MASKS.names),
    Key("eval.num_inpainting", "int", 1, meaning="held-out digits restored"),
    Key("eval.inpainting_draws", "int", 1, meaning="draws per digit"),
    Key("eval.guide_classifier_seed", "int", 0, 2 ** 31 - 1),
    Key("sample.guidance.cfg_scales", "floats"),
    Key("sample.guidance.cfgpp_scales", "floats", 0.0, 1.0),
    Key("sample.guidance.classifier_scales", "floats", 0.0),
    Key("sample.guidance.softplus_beta", "float", 0.0, open_low=True),
    Key("sample.guidance.exact_steps", "int", 1,
        meaning="LinearAG's first steps with the real unconditional call"),
    Key("sample.guidance.calibration_samples", "int", 1,
        meaning="LinearAG's calibration trajectories"),
)
NOISY_CLASSIFIER_KEYS = (
    Key("eval.noise_times", "floats", 0.0, 1.0),
    Key("eval.guidance_scales", "floats", 0.0),
    Key("eval.num_samples", "int", 1),
    Key("classifier.width", "int", 1), Key("classifier.depth", "int", 1),
    Key("classifier.time_dim", "int", 2),
)

SWEEP_KEYS = ("cfg_scales", "cfgpp_scales", "classifier_scales", "softplus_beta",
              "calibration_samples")


def one_method(section, **overrides):
  """A full guidance section (a dict: traced values allowed) from config.sample.guidance
  without the studies' sweep keys."""
  chosen = guidance_section().to_dict()
  chosen.update({k: v for k, v in section.items() if k not in SWEEP_KEYS}, **overrides)
  return chosen


def build_guided_images(config):
  """The images task with the guidance studies as its evaluation (module docstring)."""
  check_keys(config, GUIDED_KEYS)
  if config.sample.guidance.get("exact_steps", 1) > config.sample.num_steps:
    raise ConfigError(f"sample.guidance.exact_steps={config.sample.guidance.exact_steps} "
                      f"must be at most sample.num_steps={config.sample.num_steps}.")
  task = images.build_task(config)
  source = load_image_dataset(config.data.name, image_size=config.data.image_size,
                              data_dir=config.data.data_dir, split="train")
  pipeline = build_pipeline(config, DataSpec(tuple(source.image_shape), source.num_classes))
  if config.data.name != "digits" or config.data.image_size != 8:
    raise ConfigError("The guidance studies use the 8x8 digits (data.name=digits, "
                      "data.image_size=8).")
  section = config.sample.guidance
  num = config.eval.num_samples
  labels = jnp.arange(num) % pipeline.num_classes

  @functools.partial(jax.jit, static_argnums=2)
  def guided(params, key, method, scale):
    chosen = dict(method=method, scale=scale)
    return jnp.clip(pipeline.generate(params, key, num, labels, guidance=chosen).x, -1, 1)

  def cfg_vs_cfgpp(params, key, step_figures=True):
    values, figures = {}, {}
    for method, letter, scales in (("cfg", "w", section.cfg_scales),
                                   ("cfgpp", "l", section.cfgpp_scales)):
      for scale in scales:
        x = np.asarray(parallel.to_host(guided(params, key, method, float(scale))))
        name = f"{method}_{letter}{scale:g}"
        values[f"accuracy_{name}"] = image_metrics.digits_class_accuracy(x, labels)
        figures[name] = image_plots.sample_grid_figure(
            x[:config.sample.num_images], num_columns=10,
            title=f"{method} {letter}={scale:g}: accuracy "
                  f"{values[f'accuracy_{name}']:.3f}")
    return values, figures

  def inpaint(params, key):
    test, _ = digits_arrays("test")
    train, _ = digits_arrays("train")
    count = min(config.eval.num_inpainting, len(test))
    truth = np.asarray(dequantize(test[:count], DIGITS_NUM_LEVELS))
    train = np.asarray(dequantize(train, DIGITS_NUM_LEVELS))
    mask = inpainting_mask(config.eval.mask, truth.shape[1:])
    draws = config.eval.get("inpainting_draws", 1)
    observed = np.tile(truth * mask, (draws, 1, 1, 1))   # Draw-major: draw k is rows k*count...
    restores = GUIDANCE_METHODS.get(section.method).restores
    chosen = one_method(section, method=section.method if restores else "dps")
    restore = jax.jit(lambda p, k: jnp.clip(pipeline.generate(
        p, k, len(observed), None, guidance=chosen, measurements=jnp.asarray(observed),
        operator=inpainting(mask[None]), state_shape=observed.shape).x, -1, 1))
    restored = np.asarray(parallel.to_host(restore(params, key)))
    restored = observed + restored * (1 - mask)   # Keep the observed pixels as measured.
    observed = observed[:count]
    baseline = nearest_neighbour_fill(observed, mask, train)
    hole = 1 - mask
    per_draw = restored.reshape(draws, count, *truth.shape[1:])
    restored = per_draw[0]
    values = {"inpainting_psnr": float(np.mean(psnr(restored, truth, hole))),
              "nearest_neighbour_psnr": float(np.mean(psnr(baseline, truth, hole)))}
    if draws > 1:
      values["inpainting_psnr_all_draws"] = float(np.mean(
          [np.mean(psnr(d, truth, hole)) for d in per_draw]))
      values["inpainting_psnr_mean_of_draws"] = float(np.mean(
          psnr(per_draw.mean(0), truth, hole)))
    rows = min(10, count)
    shown = [observed, restored] + ([per_draw.mean(0)] if draws > 1 else []) + [baseline, truth]
    mean_title = (f" / mean of {draws} ({values['inpainting_psnr_mean_of_draws']:.2f} dB)"
                  if draws > 1 else "")
    figure = image_plots.sample_grid_figure(
        np.concatenate([a[:rows] for a in shown]), num_columns=rows,
        title=f"observed / {method} ({values['inpainting_psnr']:.2f} dB){mean_title} / "
              f"nearest neighbour ({values['nearest_neighbour_psnr']:.2f} dB) / truth")
    return values, {"inpainting": figure}

  guide_classifier = lambda: image_metrics.digits_classifier(
      config.eval.get("guide_classifier_seed", 1))

  @jax.jit
  def elucd_draw(params, classifier_params, key, scale):
    smooth = image_metrics.DigitsMLP(activation=softplus_relu(section.softplus_beta))
    logits = lambda x1: smooth.apply({"params": classifier_params}, x1)[0]
    chosen = one_method(section, method="elucd", scale=scale)
    return jnp.clip(pipeline.generate(params, key, num, None, guidance=chosen,
                                      classifier_logits=logits, target_labels=labels).x,
                    -1, 1)

  def elucd(params, key):
    draw = functools.partial(elucd_draw, classifier_params=guide_classifier().params)
    values, figures = {}, {}
    for scale in section.classifier_scales:
      x = np.asarray(parallel.to_host(draw(params, key=key, scale=float(scale))))
      name = f"elucd_s{scale:g}"
      values.update(image_metrics.digits_scores(x, labels, name))
      figures[name] = image_plots.sample_grid_figure(
          x[:config.sample.num_images], num_columns=10,
          title=f"EluCD ({section.through}) scale {scale:g}: accuracy "
                f"{values[f'accuracy_{name}']:.3f}, FD proxy "
                f"{values[f'frechet_proxy_{name}']:.2f}")
    return values, figures

  def linear_ag_coefficients(params, key):
    count = section.get("calibration_samples", num)
    calibration_model = pipeline.conditional_model(
        params, jnp.arange(count) % pipeline.num_classes, count)
    return jax.jit(lambda: fit_linear_ag(
        calibration_model, pipeline.path, pipeline.solver, pipeline.source(key, count),
        section.scale, num_steps=pipeline.num_steps, **pipeline.sampler_options))()

  def cheaper_guidance(params, key):
    k_fit, k_draw = jax.random.split(key)
    coefficients = linear_ag_coefficients(params, k_fit)
    chosen = {
        "cfg": one_method(section, method="cfg"),
        "adaptive": one_method(section, method="adaptive"),
        "linear_ag": one_method(section, method="linear_ag", coefficients=coefficients,
                                exact_steps=section.get("exact_steps", 1))}
    values, figures = {}, {}
    for name, method in chosen.items():
      run = jax.jit(lambda p, k, m=method: pipeline.generate(p, k, num, labels, guidance=m))
      result = run(params, k_draw)
      seconds = []
      for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(run(params, k_draw))
        seconds.append(time.perf_counter() - start)
      x = np.clip(np.asarray(parallel.to_host(result.x)), -1, 1)
      values.update(image_metrics.digits_scores(x, labels, name))
      values[f"nfe_{name}"] = float(result.nfe)
      values[f"seconds_{name}"] = float(np.median(seconds))
      figures[name] = image_plots.sample_grid_figure(
          x[:config.sample.num_images], num_columns=10,
          title=f"{name} w={section.scale:g}: nfe {float(result.nfe):g}, accuracy "
                f"{values[f'accuracy_{name}']:.3f}")
    return values, figures

  def evaluate(params, key):
    if config.eval.study == "cheaper_guidance":
      return cheaper_guidance(params, key)
    if config.eval.study == "inpainting":
      return inpaint(params, key)
    if config.eval.study == "classifier":
      return elucd(params, key)
    return cfg_vs_cfgpp(params, key)

  return dataclasses.replace(task, evaluate=evaluate)


# ----- the noise-aware classifier family -----




def classifier_guided_digits(pipeline, params, classifier_apply, classifier_params, key,
                             scales, num):
  """Samples of the digits run `pipeline` (params) from its unconditional model guided by
  the noise-aware classifier at each scale, to the classes 0..9 in turn: {scale: x}."""
  labels = jnp.arange(num) % pipeline.num_classes
  log_prob = classifier_log_prob(classifier_apply, classifier_params, labels)

  @jax.jit
  def draw(params, key, scale):
    chosen = one_method({}, method="classifier", scale=scale)
    return jnp.clip(pipeline.generate(params, key, num, None, guidance=chosen,
                                      classifier_log_prob=log_prob).x, -1, 1)

  return labels, {s: np.asarray(parallel.to_host(draw(params, key, float(s))))
                  for s in scales}


def build_noisy_classifier(config) -> Task:
  """Trains `diffjax.guidance.noisy_classifier` on x_t of the digits (cross-entropy at
  t ~ U(0, 1)); evaluation: its accuracy on noisy held-out digits at each t of
  eval.noise_times and, with eval.diffusion_workdir, classifier guidance of that run's
  unconditional model at each scale of eval.guidance_scales (the real-digits
  classifier's and the 1-NN's accuracy, a grid per scale)."""
  check_keys(config, NOISY_CLASSIFIER_KEYS)
  source = load_image_dataset(config.data.name, image_size=config.data.image_size,
                              data_dir=config.data.data_dir, split="train")
  spec = DataSpec(tuple(source.image_shape), source.num_classes)
  if not spec.num_classes:
    raise ConfigError(f"A classifier needs labelled data; {config.data.name!r} has none.")
  model = noisy_classifier(spec.shape, spec.num_classes, **config.classifier)
  path = build_path(config.path.name, **{k: v for k, v in config.path.items() if k != "name"})
  if not path.one_sided:
    raise ConfigError("The noise-aware classifier needs a one-sided path (a Gaussian "
                      f"source); got path.name={config.path.name!r}.")
  stream = ImageStream(source, config.train.batch_size, seed=config.seed,
                              random_flip=False, dequantize=True)
  workdir = config.eval.diffusion_workdir
  diffusion = functools.cache(lambda: runs.load(workdir))
  if workdir:
    diffusion_config = diffusion().config
    if diffusion().pipeline is None or diffusion().spec.shape != spec.shape:
      raise ConfigError(f"eval.diffusion_workdir={workdir!r} holds a "
                        f"{diffusion_config.get('experiment')!r} run; a digits run of "
                        "the images or guided_images family is needed.")
    if diffusion_config.path.name != config.path.name:
      raise ConfigError(f"The classifier is trained on path {config.path.name!r} but the "
                        f"run in {workdir} uses {diffusion_config.path.name!r}: they must "
                        "be the same path.")

  def loss(params, key, shard, step, batch):
    del step
    k_source, k_loss = jax.random.split(key)
    x1 = shard(batch["image"])
    x0 = shard(path.source_sample(k_source, x1.shape))
    return noisy_classifier_loss(path, model.apply, params, k_loss, x0, x1, batch["label"])

  test, test_labels = digits_arrays("test")
  test = jnp.asarray(dequantize(test, DIGITS_NUM_LEVELS))

  @jax.jit
  def noisy_accuracy(params, key, t):
    xt = path.sample(key, jnp.full((test.shape[0],), t), path.source_sample(key, test.shape),
                     test)
    return jnp.mean(jnp.argmax(model.apply(params, xt, t), -1) == test_labels)

  def evaluate(params, key):
    values = {f"noisy_accuracy_t{t:g}": float(noisy_accuracy(params, key, t))
              for t in config.eval.noise_times}
    figures = {}
    if workdir:
      run = diffusion()
      labels, draws = classifier_guided_digits(run.pipeline, run.params, model.apply, params,
                                               key, config.eval.guidance_scales,
                                               config.eval.num_samples)
      for scale, x in draws.items():
        name = f"classifier_s{scale:g}"
        values.update(image_metrics.digits_scores(x, labels, name))
        figures[name] = image_plots.sample_grid_figure(
            x[:50], num_columns=10, title=f"noise-aware classifier guidance, scale "
            f"{scale:g}: accuracy {values[f'accuracy_{name}']:.3f}")
    return values, figures

  def sample(params, key):
    return {}, evaluate(params, key)[1]

  return Task(init_params=model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate)
