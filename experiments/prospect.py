"""ProSpect on the digits (family `prospect`): a prompt spectrum (one label embedding per
interval of method.intervals) is learned for each concept of `concepts` (a digit drawn in
a style, concepts.num_images training images each) with the source run's network frozen
(`diffjax.adaptation.prospect`); only the spectra are trained and checkpointed.

Evaluation draws eval.num_samples samples per case with the source run's sampler:
  concept_<c>_*          each concept's own spectrum: class_accuracy (the digits
                         classifier says the concept's digit) and thick_rate (stroke mass
                         above the threshold between thick and original test digits);
  swap<k>_class_transfer / swap<k>_style_transfer
                         concept 0's spectrum with interval k's embedding taken from
                         concept 1: the fraction of samples whose digit (whose thickness)
                         is concept 1's: the attribute transfer accuracy of interval k.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax import runs
from diffjax.adaptation.intervals import check_intervals
from diffjax.adaptation.prospect import (label_table, spectrum_generate, spectrum_loss,
                                         swap_intervals)
from diffjax.adaptation.styles import (TARGET_STYLES, concept_images, ink_fraction,
                                       styled_digits)
from diffjax.errors import ConfigError
from diffjax.image_metrics import digits_classifier
from diffjax.image_plots import sample_grid_figure
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

PROSPECT_KEYS = (
    Key("concepts.num_images", "int", 1, meaning="training images per concept"),
    Key("concepts.seed", "int", 0, 2 ** 31 - 1),
    Key("method.init_scale", "float", 0.0),
    Key("source.use_ema", "bool"),
    Key("eval.num_samples", "int", 2, meaning="samples per case"),
)


def _check_concepts(items):
  concepts = tuple(tuple(c) for c in items)
  if len(concepts) != 2 or any(len(c) != 2 for c in concepts):
    raise ConfigError(f"concepts.pairs={items!r} must be two (style, digit) pairs, e.g. "
                      "(('thick', 3), ('original', 8)).")
  for style, digit in concepts:
    TARGET_STYLES.get(style)
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
      raise ConfigError(f"concepts.pairs: digit {digit!r} must be an int in 0..9.")
  return concepts


def build_task(config) -> Task:
  """Builds the task; a bad interval list or concept fails here, before any workdir is
  touched."""
  check_keys(config, PROSPECT_KEYS)
  boundaries = check_intervals(config.method.intervals, "method.intervals")
  concepts = _check_concepts(config.concepts.pairs)
  run = runs.load(config.source.workdir, use_ema=config.source.use_ema)
  num_classes = run.pipeline.num_classes
  table = label_table(run.params)
  if tuple(run.spec.shape) != (8, 8, 1) or not num_classes:
    raise ConfigError(f"source.workdir={config.source.workdir}: ProSpect needs a "
                      "class-conditional 8x8 digits run.")
  num_intervals = len(boundaries) - 1
  images = np.concatenate([concept_images(s, d, config.concepts.num_images,
                                          config.concepts.seed) for s, d in concepts])
  owner = np.repeat(np.arange(len(concepts)), config.concepts.num_images)
  slot = num_classes   # The null row is borrowed; the spectra never read its value.
  loss = spectrum_loss(run.pipeline, run.params, boundaries, slot, images, owner,
                       config.train.batch_size)

  def init_params(key):
    # Every interval starts at the unconditional (null) embedding, plus a little noise.
    noise = config.method.init_scale * jax.random.normal(
        key, (len(concepts), num_intervals, table.shape[1]))
    return {"spectra": table[slot][None, None] + noise}

  classifier = digits_classifier(config.eval.classifier_seed)
  thick_ink = ink_fraction(styled_digits("thick", "test")[0]).mean()
  plain_ink = ink_fraction(styled_digits("original", "test")[0]).mean()
  threshold = (thick_ink + plain_ink) / 2
  num_samples = config.eval.num_samples

  @jax.jit
  def generate(spectra, key):
    batch = jnp.broadcast_to(spectra, (num_samples, *spectra.shape))
    return spectrum_generate(run.pipeline, run.params, batch, key, boundaries, slot)

  def describe(samples):
    classes = np.argmax(classifier.logits(samples), -1)
    return classes, ink_fraction(samples) > threshold

  def evaluate(params, key):
    spectra = params["spectra"]
    values, figures, traits = {}, {}, []
    for c, (style, digit) in enumerate(concepts):
      samples = parallel.to_host(generate(spectra[c], jax.random.fold_in(key, c)))
      classes, thick = describe(samples)
      traits.append((digit, style == "thick"))
      values[f"concept_{c}_class_accuracy"] = float(np.mean(classes == digit))
      values[f"concept_{c}_thick_rate"] = float(np.mean(thick))
      figures[f"concept_{c}"] = sample_grid_figure(samples[:32], title=f"{style} {digit}")
    for k in range(num_intervals):
      swapped = swap_intervals(spectra[0][None], spectra[1][None], (k,))[0]
      samples = parallel.to_host(generate(swapped, jax.random.fold_in(key, 100 + k)))
      classes, thick = describe(samples)
      values[f"swap{k}_class_transfer"] = float(np.mean(classes == traits[1][0]))
      values[f"swap{k}_style_transfer"] = float(np.mean(thick == traits[1][1]))
      figures[f"swap{k}"] = sample_grid_figure(samples[:32], title=f"interval {k} swapped")
    return values, figures

  def sample(params, key):
    samples = parallel.to_host(generate(params["spectra"][0], key))
    return {"samples": samples}, {"samples": sample_grid_figure(samples[:64])}

  return Task(init_params=init_params, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size)
