"""Few-shot adaptation of a trained digits run to a new style (family `few_shot`): a method
of `diffjax.adaptation.FEW_SHOT_METHODS` (plain fine-tuning, DomainStudio, phasic content
fusing) fine-tunes the source run's network (source.workdir) on target.num_shots digits
drawn in target.style (`diffjax.adaptation.TARGET_STYLES`) through the engine's train step.

Evaluation generates eval.num_samples class-conditional samples (classes cycling through the
shots' labels) with the source run's sampler and reports, in the digits classifier's
features (seed 0; phasic fusing's encoder is another classifier, seed method.encoder_seed):
  fd_target           proxy Fréchet distance to the held-out target digits (the test split
                      in target.style): fidelity to the new domain;
  diversity_pairwise  mean pairwise feature distance of the samples;
  diversity_intra     intra-cluster distance (samples grouped by nearest shot): 0 for
                      copies of the shots (`diffjax.adaptation.diversity`);
  nearest_shot        mean feature distance of a sample to its nearest shot;
and the same for the source run's own parameters once per process (source_* metrics).
run.json records the source's pipeline (`diffjax.runs.adapted_record`): `runs.load` of the
workdir samples the adapted model like any trained run.
"""
import functools

import jax
import numpy as np

from diffjax import runs
from diffjax.adaptation import (FEW_SHOT_METHODS, TARGET_STYLES, classifier_encoder,
                                few_shot_context, few_shot_loss, few_shot_set,
                                intra_cluster_distance, mean_pairwise_distance,
                                styled_digits)
from diffjax.adaptation.diversity import nearest_anchor
from diffjax.adaptation.few_shot import check_batch, shot_labels_for
from diffjax.data.digits import digits_bin_centres
from diffjax.errors import ConfigError
from diffjax.image_metrics import digits_classifier, frechet_distance_from_features
from diffjax.image_plots import sample_grid_figure
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

FEW_SHOT_KEYS = (
    Key("method.name", "name", names=FEW_SHOT_METHODS.names),
    Key("target.style", "name", names=TARGET_STYLES.names),
    Key("target.num_shots", "int", 1, meaning="few-shot training images"),
    Key("target.seed", "int", 0, 2 ** 31 - 1),
    Key("source.use_ema", "bool"),
    Key("eval.num_samples", "int", 2, meaning="samples per evaluation"),
    Key("eval.classifier_seed", "int", 0, 2 ** 31 - 1),
)


def _metrics(classifier, samples, held_out_features, shot_features):
  features = classifier.features(samples)
  nearest = shot_features[nearest_anchor(features, shot_features)]
  return {"fd_target": frechet_distance_from_features(features, held_out_features),
          "diversity_pairwise": mean_pairwise_distance(features),
          "diversity_intra": intra_cluster_distance(features, shot_features),
          "nearest_shot": float(np.linalg.norm(features - nearest, axis=1).mean())}


def build_task(config) -> Task:
  """Builds the task; bad values, a few-shot set smaller than the batch and a bad source
  workdir fail here, before any workdir is touched."""
  check_keys(config, FEW_SHOT_KEYS)
  method = FEW_SHOT_METHODS.get(config.method.name)
  check_batch(config.target.num_shots, config.train.batch_size)
  options = config.method.to_dict()
  method.check(options, config.train.batch_size)
  if not config.source.workdir:
    raise ConfigError("source.workdir is empty: give the trained digits run to adapt "
                      "(e.g. a configs/guidance/digits.py run).")
  run = runs.load(config.source.workdir, use_ema=config.source.use_ema)
  if tuple(run.spec.shape) != (8, 8, 1):
    raise ConfigError(f"source.workdir={config.source.workdir} holds a run on data of shape "
                      f"{tuple(run.spec.shape)}; few-shot adaptation adapts an 8x8 digits run.")
  shots, labels = few_shot_set(config.target.style, config.target.num_shots,
                               config.target.seed)
  encoder, source_images = None, None
  if method.needs_encoder:
    encoder = classifier_encoder(digits_classifier(config.method.encoder_seed))
    source_images = digits_bin_centres("train")[0]
  context = few_shot_context(run, shots, labels, config.train.batch_size, options,
                             encoder, source_images)
  loss = few_shot_loss(method, context)

  classifier = digits_classifier(config.eval.classifier_seed)
  held_out, _ = styled_digits(config.target.style, "test")
  held_out_features = classifier.features(held_out)
  shot_features = classifier.features(shots)
  num_samples = config.eval.num_samples
  eval_labels = (shot_labels_for(num_samples, labels) if run.pipeline.num_classes
                 else None)

  @jax.jit
  def generate(params, key):
    return run.pipeline.generate(params, key, num_samples, eval_labels).x

  @functools.lru_cache(maxsize=1)
  def source_metrics():
    samples = parallel.to_host(generate(run.params, jax.random.PRNGKey(config.seed)))
    values = _metrics(classifier, samples, held_out_features, shot_features)
    return {f"source_{k}": v for k, v in values.items()}

  def evaluate(params, key):
    samples = parallel.to_host(generate(params, key))
    values = _metrics(classifier, samples, held_out_features, shot_features)
    figure = sample_grid_figure(samples[:64], title=f"{method.name}, {config.target.style}")
    return {**values, **source_metrics()}, {"samples": figure,
                                            "shots": sample_grid_figure(shots[:64],
                                                                        title="shots")}

  def sample(params, key):
    samples = parallel.to_host(generate(params, key))
    arrays = {"samples": samples}
    if eval_labels is not None:
      arrays["labels"] = eval_labels
    return arrays, {"samples": sample_grid_figure(samples[:64], title=method.name)}

  return Task(init_params=lambda key: run.params, loss=loss, evaluate=evaluate,
              sample=sample, batch_size=config.train.batch_size,
              record=runs.adapted_record(run))
