"""Safety of the class-conditional digits model: a trojaned fine-tune (TrojDiff, family
`trojan`) and an erasing fine-tune (family `erase`), both from a trained digits run
(base.workdir, `diffjax.runs.load`) through the engine's own train step, and
UnlearnDiffAtk (family `unlearn_attack`) against an unlearned model.

trojan: `diffjax.safety.trojan.mixed_loss` (attack.fraction of each batch trojan);
attack.fraction = 0 is the clean model fine-tuned the same way. Evaluations report the
benign samples' proxy Fréchet distance and class accuracy (eval.num_samples, classes in
turn) and the attack success rate of as many samples from the trojan noise with the same
labels (`TROJAN_TARGETS`' success), with a grid of each.
erase: `diffjax.safety.erasure.erase_sampler`; evaluations report the share of the
forgotten class's samples the digits classifier reads as it, accuracy and proxy FD on the
other classes (`diffjax.distillation.sfd.forgetting_metrics`).
unlearn_attack: the parameters are one embedding vector (`diffjax.safety.
adversarial_condition`), trained by the engine on the subject's denoising loss of test
images of the forgotten class; evaluations report the share of the subject's samples of
that class read as it with its own embedding (forget_share_before_attack) and with the
trained one (forget_share_after_attack).
sda: the parameters are the digits classifier's, fine-tuned on the base run's
class-conditional samples after DDA's projection (`diffjax.safety.sda`); evaluations give
its accuracy and the source classifier's on digits-C (`diffjax.safety.corruptions`).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import runs
from diffjax.data.digits import digits_bin_centres
from diffjax.distillation.sfd import forgetting_metrics
from diffjax.errors import ConfigError
from diffjax.image_metrics import (DigitsClassifier, digits_classifier,
                                   digits_frechet_distance, digits_reference_images)
from diffjax.image_plots import sample_grid_figure
from diffjax.pipeline import build_pipeline, pipeline_record
from diffjax.safety.adversarial_condition import attack_loss
from diffjax.safety.corruptions import CORRUPTIONS, SEVERITIES, check_corruption, corrupt
from diffjax.safety.dda import project as dda_project
from diffjax.safety.digits_data import check_digit_class, digits_sampler
from diffjax.safety.erasure import erase_sampler
from diffjax.safety.sda import classifier_loss
from diffjax.safety.subjects import SUBJECTS, load_subject
from diffjax.safety.trojan import (IMAGE_SHAPE, TROJAN_TARGETS, build_target, load_trigger,
                                   mixed_loss, patch_trigger, trojan_source)
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

SAFETY_KEYS = (
    Key("eval.num_samples", "int", 10, meaning="samples per evaluation"),
    Key("attack.target", "name", names=TROJAN_TARGETS.names),
    Key("attack.fraction", "float", 0.0, 1.0, open_high=True,
        meaning="share of each batch that is trojan; 0: the clean fine-tune"),
    Key("attack.threshold", "float", 0.0, open_low=True,
        meaning="mean squared error counted as a hit"),
    Key("attack.trigger_value", "float"),
    Key("erase.fraction", "float", 0.0, 1.0, open_low=True, open_high=True,
        meaning="share of each batch relabelled to the forgotten class"),
)
ATTACK_KEYS = (
    Key("subject.kind", "name", names=SUBJECTS.names),
    Key("subject.scale", "float"),
    Key("subject.negative_scale", "float"),
    Key("attack.num_targets", "int", 1, meaning="test images of the forgotten class"),
    Key("attack.num_pairs", "int", 1, meaning="antithetic noise pairs per step"),
    Key("attack.num_lambda", "int", 1, meaning="log-SNR draws per step"),
)
SDA_KEYS = (
    Key("eval.corruptions", "names", names=CORRUPTIONS.names),
    Key("eval.severities", "ints", 0, max(SEVERITIES), meaning="0: the clean images"),
    Key("eval.num_test", "int", 2, 300, meaning="test digits corrupted"),
    Key("dda.start", "float", 0.0, 1.0, open_high=True,
        meaning="the time the inputs are noised to (0: pure noise)"),
    Key("dda.num_steps", "int", 1),
    Key("dda.scale", "float", 0.0),
    Key("sda.num_synthetic", "int", 10, meaning="class-conditional samples"),
)
# The sections a fine-tune must share with its base run (its network and how it samples).
SHARED_SECTIONS = ("model", "path", "objective")


def load_base(config):
  """The base run (base.workdir) and the fine-tune's pipeline; a run whose network or
  path differs from the config's is refused, so the fine-tuned workdir loads as a run."""
  base = runs.load(config.base.workdir)
  for name in SHARED_SECTIONS:
    mine, theirs = config[name].to_dict(), base.config[name].to_dict()
    if mine != theirs:
      raise ConfigError(f"base.workdir={config.base.workdir!r} has {name}={theirs}, but this "
                        f"config has {name}={mine}; fine-tune a run of the same {name} (the "
                        ":tiny configs fine-tune `configs/guidance/digits.py:tiny` runs).")
  if base.spec.shape != IMAGE_SHAPE or base.spec.num_classes != 10:
    raise ConfigError(f"base.workdir={config.base.workdir!r} is a run on data {base.spec}; "
                      "the safety studies fine-tune a class-conditional 8x8 digits run.")
  return base, build_pipeline(config, base.spec)


def _class_labels(n):
  return jnp.arange(n, dtype=jnp.int32) % 10


def _grid(images, title):
  return sample_grid_figure(np.asarray(images)[:50], num_columns=10, title=title)


def _fine_tune_task(config, base, pipeline, loss, evaluate, generate) -> Task:
  def sample(params, key):
    images = parallel.to_host(generate(params, key))
    labels = np.asarray(_class_labels(images.shape[0]))
    return {"samples": images, "labels": labels}, {"samples": _grid(images, "samples")}

  return Task(init_params=lambda key: base.params, loss=loss, evaluate=evaluate,
              sample=sample, batch_size=config.train.batch_size,
              record=pipeline_record(pipeline))


def trojan_parts(config):
  """(source, target): the trojan noise and target of config.attack."""
  attack = config.attack
  trigger = (load_trigger(attack.trigger_file) if attack.trigger_file else
             patch_trigger(IMAGE_SHAPE, attack.trigger_size, attack.trigger_value))
  source = trojan_source(trigger, attack.gamma)
  target = build_target(attack.target, target_class=attack.target_class,
                        threshold=attack.threshold)
  return source, target


def build_trojan(config) -> Task:
  """The trojan (or, with attack.fraction 0, clean) fine-tune of base.workdir."""
  check_keys(config, SAFETY_KEYS)
  source, target = trojan_parts(config)
  base, pipeline = load_base(config)
  draw = digits_sampler()
  mixed = mixed_loss(pipeline, source, target.draw, config.attack.fraction)

  def loss(params, key, shard, step):
    del step
    k_data, k_loss = jax.random.split(key)
    x1, labels = draw(k_data, config.train.batch_size)
    return mixed(params, k_loss, shard, x1, labels)

  n = config.eval.num_samples
  trojaned = dataclasses.replace(pipeline, source=source.sample)

  @functools.partial(jax.jit, static_argnums=2)
  def generate(params, key, trojan=False):
    chosen = trojaned if trojan else pipeline
    return jnp.clip(chosen.generate(params, key, n, _class_labels(n)).x, -1.0, 1.0)

  reference, _ = digits_reference_images("test")
  classifier = digits_classifier()

  def evaluate(params, key):
    k_benign, k_trojan = jax.random.split(key)
    benign = parallel.to_host(generate(params, k_benign))
    trojan = parallel.to_host(generate(params, k_trojan, True))
    labels = np.asarray(_class_labels(n))
    values = {"benign_frechet_proxy": digits_frechet_distance(benign, reference, classifier),
              "benign_class_accuracy": classifier.accuracy(benign, labels),
              "attack_success_rate": float(np.mean(target.success(trojan, classifier)))}
    return values, {"benign": _grid(benign, "benign noise"),
                    "trojan": _grid(trojan, f"trojan noise, target {target.name}")}

  return _fine_tune_task(config, base, pipeline, loss, evaluate, generate)


def build_erase(config) -> Task:
  """The erasing fine-tune of base.workdir (erase.forget_class onto erase.override_class)."""
  check_keys(config, SAFETY_KEYS)
  erase = config.erase
  draw = erase_sampler(erase.forget_class, erase.override_class, erase.fraction)
  base, pipeline = load_base(config)

  def loss(params, key, shard, step):
    del step
    k_data, k_loss = jax.random.split(key)
    x1, labels = draw(k_data, config.train.batch_size)
    return pipeline.loss(params, k_loss, shard, x1, labels)

  n = config.eval.num_samples

  @jax.jit
  def generate(params, key):
    return jnp.clip(pipeline.generate(params, key, n, _class_labels(n)).x, -1.0, 1.0)

  reference, reference_labels = digits_reference_images("test")

  def evaluate(params, key):
    images = parallel.to_host(generate(params, key))
    values = forgetting_metrics(images, np.asarray(_class_labels(n)), erase.forget_class,
                                reference, reference_labels, digits_classifier())
    return values, {"samples": _grid(images, f"class {erase.forget_class} erased")}

  return _fine_tune_task(config, base, pipeline, loss, evaluate, generate)


def build_attack(config) -> Task:
  """UnlearnDiffAtk on config.subject: the forgotten class's embedding trained (the
  engine's step, the network frozen) to minimise the denoising loss of
  attack.num_targets test images of the class."""
  check_keys(config, SAFETY_KEYS + ATTACK_KEYS)
  forget = check_digit_class(config.attack.forget_class, "attack.forget_class")
  subject, path = load_subject(config.subject, config.attack.forget_class)
  targets, _ = digits_bin_centres("test", classes=(forget,), limit=config.attack.num_targets)
  targets = jnp.asarray(targets)
  attack = attack_loss(subject, path, targets, config.attack.num_pairs,
                       config.attack.num_lambda)

  def loss(vector, key, shard, step):
    del shard, step
    return attack(vector, None, key), {}

  n = config.eval.num_samples
  generate = jax.jit(lambda vector, key: jnp.clip(subject.generate(vector, key, n), -1, 1))
  classifier = digits_classifier()

  def share(images):
    return float(np.mean(np.argmax(classifier.logits(images), -1) == forget))

  before = {}

  def evaluate(vector, key):
    images = parallel.to_host(generate(vector, key))
    if "share" not in before:
      before["share"] = share(parallel.to_host(generate(subject.initial, key)))
    return ({"forget_share_before_attack": before["share"],
             "forget_share_after_attack": share(images)},
            {"samples": _grid(images, f"{subject.name}: adversarial condition")})

  def sample(vector, key):
    images = parallel.to_host(generate(vector, key))
    return {"samples": images}, {"samples": _grid(images, "adversarial condition")}

  return Task(init_params=lambda key: subject.initial, loss=loss, evaluate=evaluate,
              sample=sample, batch_size=config.attack.num_targets)


def build_sda(config) -> Task:
  """SDA on digits-C: the digits classifier fine-tuned (the engine's step) on the base
  run's class-conditional samples re-diffused by DDA's projection; evaluations give the
  accuracy of the source classifier, of the source classifier on DDA-projected inputs and
  of the fine-tuned one on them, for each corruption and severity of eval."""
  check_keys(config, SAFETY_KEYS + SDA_KEYS)
  for name in config.eval.corruptions:
    for severity in config.eval.severities:
      check_corruption(name, severity)
  base = runs.load(config.base.workdir)
  if base.pipeline is None or base.spec.num_classes != 10 or base.spec.shape != IMAGE_SHAPE:
    raise ConfigError(f"base.workdir={config.base.workdir!r} is not a class-conditional 8x8 "
                      "digits run.")
  pipeline, params, dda = base.pipeline, base.params, config.dda
  unconditional = pipeline.fields(params, None)
  project_batch = jax.jit(lambda x, key: jnp.clip(dda_project(
      unconditional, pipeline.path, x, key, start=dda.start, num_steps=dda.num_steps,
      scale=dda.scale), -1.0, 1.0))
  n = config.sda.num_synthetic
  synthetic_labels = _class_labels(n)
  synthetic = jnp.clip(jax.jit(lambda key: pipeline.generate(
      params, key, n, synthetic_labels).x)(jax.random.PRNGKey(config.seed)), -1.0, 1.0)
  projected = project_batch(synthetic, jax.random.PRNGKey(config.seed + 1))
  source = digits_classifier()
  sda_loss = classifier_loss(source, projected, synthetic_labels, config.train.batch_size)
  test, test_labels = digits_bin_centres("test", limit=config.eval.num_test)
  test, test_labels = jnp.asarray(test), np.asarray(test_labels)
  cache = {}

  def inputs(name, severity):
    if (name, severity) not in cache:
      key = jax.random.fold_in(jax.random.PRNGKey(config.seed + 2), 10 * severity)
      corrupted = corrupt(name, key, test, severity)
      cache[(name, severity)] = (np.asarray(corrupted),
                                 np.asarray(project_batch(corrupted, key)))
    return cache[(name, severity)]

  def evaluate(classifier_params, key):
    del key
    adapted = DigitsClassifier(classifier_params, source.feature_dim)
    values = {}
    for name in config.eval.corruptions:
      for severity in config.eval.severities:
        corrupted, projected_test = inputs(name, severity)
        suffix = f"{name}{severity}"
        values[f"source_{suffix}"] = source.accuracy(corrupted, test_labels)
        values[f"dda_{suffix}"] = source.accuracy(projected_test, test_labels)
        values[f"sda_{suffix}"] = adapted.accuracy(projected_test, test_labels)
    return values, {"synthetic": _grid(np.asarray(projected), "re-diffused synthetic")}

  def loss(classifier_params, key, shard, step):
    del shard, step
    return sda_loss(classifier_params, None, key), {}

  def sample(classifier_params, key):
    del classifier_params, key
    return {"samples": np.asarray(projected), "labels": np.asarray(synthetic_labels)}, {}

  return Task(init_params=lambda key: source.params, loss=loss, evaluate=evaluate,
              sample=sample, batch_size=config.train.batch_size)
