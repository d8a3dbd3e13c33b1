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
                pixels, pasted into the hole); a figure of observed / restored / truth.
`--mode=sample` samples with sample.guidance as configured (any method, any scale).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from diffjax import image_metrics, image_plots
from diffjax.data import load_image_dataset
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.errors import ConfigError
from diffjax.guidance import inpainting
from diffjax.train import parallel
from experiments import images
from experiments.pipeline import DataSpec, build_pipeline

STUDIES = ("cfg_vs_cfgpp", "inpainting")
MASKS = ("right_half", "centre")


def guidance_section(**overrides) -> ml_collections.ConfigDict:
  """config.sample.guidance with every key a method reads (`diffjax.guidance.build`); the
  scale means p_u + w (p_c - p_u): w = 0 unconditional, w = 1 conditional."""
  section = ml_collections.ConfigDict(dict(
      method="none", scale=1.0, interval=(0.0, 1.0), threshold=0.99, step_size=1.0,
      noise_std=0.1, energy="squared", quantile=0.5, tau1=1.0, ratio=0.5, amplitude=0.3,
      num_candidates=8, alpha=0.1))
  section.update(overrides)
  return section


def guided_images_config():
  """The digits run of configs/images/digits.py on the rectified-flow path (the linear
  path as a Gaussian path: DDIM, DPM-Solver++ and CFG++ apply), label dropout 0.15."""
  config = images.base_config()
  config.experiment = "guided_images"
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.train.label_dropout = 0.15
  config.sample = ml_collections.ConfigDict(dict(solver="ddim", num_steps=20, num_images=50))
  config.sample.guidance = guidance_section(cfg_scales=(0.0, 1.0, 2.0, 4.0),
                                            cfgpp_scales=(0.0, 0.2, 0.4, 0.6))
  config.eval.study = "cfg_vs_cfgpp"
  config.eval.mask = "right_half"
  config.eval.num_inpainting = 100
  return config


def _mask(name, shape):
  size = shape[0]
  mask = np.ones(shape, np.float32)
  if name == "right_half":
    mask[:, size // 2:] = 0.0
  elif name == "centre":
    mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 0.0
  else:
    raise ConfigError(f"Unknown eval.mask {name!r}; valid: {', '.join(MASKS)}.")
  return mask


def psnr(restored, truth, hole):
  """PSNR (dB) on the hole (mask 0) of images in [-1, 1] (peak-to-peak 2), per image."""
  err = np.sum(((restored - truth) ** 2) * hole, axis=(1, 2, 3)) / np.sum(hole)
  return 10 * np.log10(4.0 / np.maximum(err, 1e-12))


def nearest_neighbour_fill(observed, mask, train):
  """The training image closest on the observed pixels, pasted into the hole."""
  d = np.sum(((observed[:, None] - train[None]) * mask) ** 2, axis=(2, 3, 4))
  return observed * mask + train[np.argmin(d, 1)] * (1 - mask)


def build_guided_images(config):
  """The images task with the guidance studies as its evaluation (module docstring)."""
  if config.eval.get("study", "cfg_vs_cfgpp") not in STUDIES:
    raise ConfigError(f"Unknown eval.study {config.eval.study!r}; valid: "
                      f"{', '.join(STUDIES)}.")
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
    for method, scales in (("cfg", section.cfg_scales), ("cfgpp", section.cfgpp_scales)):
      letter = "w" if method == "cfg" else "l"
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
    mask = _mask(config.eval.mask, truth.shape[1:])
    observed = truth * mask
    method = section.method if section.method in ("dps", "reconstruction") else "dps"
    chosen = guidance_section(**{k: v for k, v in section.items()
                                 if k not in ("cfg_scales", "cfgpp_scales")})
    chosen.method = method
    restore = jax.jit(lambda p, k: jnp.clip(pipeline.generate(
        p, k, count, None, guidance=chosen, measurements=jnp.asarray(observed),
        operator=inpainting(mask), state_shape=observed.shape).x, -1, 1))
    restored = np.asarray(parallel.to_host(restore(params, key)))
    restored = observed + restored * (1 - mask)   # Keep the observed pixels as measured.
    baseline = nearest_neighbour_fill(observed, mask, train)
    hole = 1 - mask
    values = {"inpainting_psnr": float(np.mean(psnr(restored, truth, hole))),
              "nearest_neighbour_psnr": float(np.mean(psnr(baseline, truth, hole)))}
    rows = min(10, count)
    grid = np.concatenate([observed[:rows], restored[:rows], baseline[:rows], truth[:rows]])
    figure = image_plots.sample_grid_figure(
        grid, num_columns=rows, title=f"observed / {method} ({values['inpainting_psnr']:.2f}"
        f" dB) / nearest neighbour ({values['nearest_neighbour_psnr']:.2f} dB) / truth")
    return values, {"inpainting": figure}

  def evaluate(params, key):
    if config.eval.study == "inpainting":
      return inpaint(params, key)
    return cfg_vs_cfgpp(params, key)

  return dataclasses.replace(task, evaluate=evaluate)
