"""CatVTON-style conditioning on the digits (family `concat`): a DiT trained from scratch
on the stroke-transfer toy task of `diffjax.adaptation.concat` (a reference digit beside the
noisy target in one input, the target's shape as a mask channel, no reference encoder).
method.use_reference = False blanks the reference: the same network without it.

Evaluation generates eval.num_samples targets for pairs (reference, mask) from the digits
test split (other digits than the training ones) and reports:
  style_accuracy  the stroke style of the output (stroke mass above the midpoint between
                  thick and original test digits) is the reference's;
  class_accuracy  the digits classifier reads the mask's digit in the output;
  psnr            PSNR (dB) of the output against the true target, the mask's digit in
                  the reference's style (mean over samples).
"""
import jax
import numpy as np

from diffjax.adaptation.concat import (STROKE_STYLES, concat_generate, concat_loss,
                                       stroke_style_bank, stroke_transfer_batch)
from diffjax.adaptation.styles import ink_fraction
from diffjax.data.digits import digits_bin_centres
from diffjax.image_metrics import digits_classifier
from diffjax.image_plots import sample_grid_figure
from diffjax.models import build_model
from diffjax.paths import build_path
from diffjax.pipeline import component_options
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

CONCAT_KEYS = (
    Key("method.use_reference", "bool"),
    Key("sample.num_steps", "int", 1, meaning="sampler steps"),
    Key("eval.num_samples", "int", 2, meaning="targets generated per evaluation"),
    Key("eval.classifier_seed", "int", 0, 2 ** 31 - 1),
    Key("eval.pairs_seed", "int", 0, 2 ** 31 - 1),
)


def build_task(config) -> Task:
  check_keys(config, CONCAT_KEYS)
  use_reference = config.method.use_reference
  train_images, _ = digits_bin_centres("train")
  test_images, test_labels = digits_bin_centres("test")
  bank = stroke_style_bank(train_images)
  test_bank = stroke_style_bank(test_images)
  model = build_model(config.model.name, (8, 16, 2), **component_options(config.model))
  path = build_path(config.path.name, **component_options(config.path))
  loss = concat_loss(model.apply, path, bank, config.train.batch_size, use_reference)

  num_samples = config.eval.num_samples
  reference, mask, truth, style, index = (np.asarray(a) for a in stroke_transfer_batch(
      test_bank, jax.random.PRNGKey(config.eval.pairs_seed), num_samples, use_reference))
  labels = test_labels[index]
  classifier = digits_classifier(config.eval.classifier_seed)
  inks = [ink_fraction(b).mean() for b in test_bank]
  threshold = (inks[0] + inks[1]) / 2
  thick_index = STROKE_STYLES.index("thick")

  @jax.jit
  def generate(params, key):
    return concat_generate(model.apply, params, path, reference, mask, key,
                           config.sample.solver, config.sample.num_steps)

  def evaluate(params, key):
    x = np.asarray(parallel.to_host(generate(params, key)))
    thick = ink_fraction(x) > threshold
    mse = ((x - truth) ** 2).reshape(num_samples, -1).mean(1)
    values = {"style_accuracy": float(np.mean(thick == (style == thick_index))),
              "class_accuracy": classifier.accuracy(x, labels),
              "psnr": float(np.mean(10 * np.log10(4.0 / np.maximum(mse, 1e-12))))}
    rows = np.concatenate([reference[:8], mask[:8], x[:8], truth[:8]])
    return values, {"reference_mask_output_truth": sample_grid_figure(rows)}

  def sample(params, key):
    x = np.asarray(parallel.to_host(generate(params, key)))
    return {"samples": x, "references": reference, "masks": mask}, {
        "samples": sample_grid_figure(x[:64])}

  return Task(init_params=model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size)
