"""D2NWG ("Diffusion-Based Neural Network Weights Generation", Soro et al. 2025) on a zoo
of small MLP classifiers.

build_task  A zoo of data.models_per_task MLPs (layer sizes data.num_features,
            data.hidden..., data.num_classes) trained on each of data.num_tasks synthetic
            classification tasks (`diffjax.data.classification_tasks`), or read from
            data.zoo (an `.npz` of `diffjax.weights.zoo`); zoo.shared_init starts every
            network from one initialisation. Each network is flattened and
            normalised per layer (`diffjax.weights.layout`); a model of the (P,) vectors
            conditioned on the task's data-set embedding (per-class feature means) is
            trained with the config's path and objective. Evaluation generates
            eval.draws networks per task, loads them into the MLP and reports held-out
            accuracy without training (`acc_generated`) beside the zoo's (`acc_zoo`) and
            random initialisation's (`acc_random`), `acc_ratio` = acc_generated /
            acc_zoo, and after finetune.epochs epochs of training from the generated
            weights (`acc_finetuned_generated`) against from random initialisation
            (`acc_finetuned_random`); all means over tasks and draws. Two probes
            of the gap to the zoo: `share_generated_at_zoo`, the share of generated
            networks within 90% of their task's zoo accuracy, and
            `acc_generated_other_task`, task t's generated networks scored on task
            t + 1 (beside the zoo's `acc_zoo_other_task`: the level of a network
            made for another task, which a model ignoring its condition would reach).
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.classification_tasks import classification_task, dataset_embedding
from diffjax.data.normalisation import fit_group_standardizer
from diffjax.errors import ConfigError
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_task
from diffjax.train import parallel
from diffjax.train.validation import Key, check_keys
from diffjax.weights.classifier import classifier_accuracy, fit_classifier, init_classifier
from diffjax.weights.layout import (flatten_weights, layer_groups, layout_of_sizes,
                                    unflatten_weights)
from diffjax.weights.zoo import load_zoo, train_zoo

KEYS = (
    Key("data.num_tasks", "int", 1, meaning="classification data sets"),
    Key("data.models_per_task", "int", 1, meaning="zoo networks per task"),
    Key("data.num_features", "int", 2),
    Key("data.num_classes", "int", 2),
    Key("data.hidden", "ints", 1, meaning="hidden layer widths"),
    Key("data.embed_dim", "int", 1, meaning="projected features per class in the embedding"),
    Key("zoo.epochs", "int", 1),
    Key("zoo.batch_size", "int", 1),
    Key("zoo.learning_rate", "float", 0.0, open_low=True),
    Key("zoo.shared_init", "bool"),
    Key("finetune.epochs", "int", 1),
    Key("eval.draws", "int", 1, meaning="generated networks per task"),
)


def _zoo(config, tasks, layout):
  path = config.data.get("zoo", "")
  if not path:
    zoo = config.zoo
    return train_zoo(jax.random.PRNGKey(config.seed), tasks, layout,
                     config.data.models_per_task, epochs=zoo.epochs,
                     batch_size=zoo.batch_size, learning_rate=zoo.learning_rate,
                     shared_init=zoo.shared_init)
  zoo = load_zoo(path)
  if zoo.layout != layout:
    raise ConfigError(f"data.zoo={path!r} holds networks of layer sizes "
                      f"{zoo.layout.layer_sizes}; the config's tasks need {layout.layer_sizes} "
                      "(data.num_features, data.hidden, data.num_classes).")
  if zoo.tasks.min() < 0 or zoo.tasks.max() >= len(tasks):
    raise ConfigError(f"data.zoo={path!r} has task indices {zoo.tasks.min()}.."
                      f"{zoo.tasks.max()}; data.num_tasks={len(tasks)} allows 0.."
                      f"{len(tasks) - 1}.")
  return zoo


def build_task(config):
  check_keys(config, KEYS)
  data = config.data
  tasks = [classification_task(config.seed, i, num_features=data.num_features,
                               num_classes=data.num_classes)
           for i in range(data.num_tasks)]
  layout = layout_of_sizes((data.num_features, *data.hidden, data.num_classes))
  zoo = _zoo(config, tasks, layout)
  normaliser = fit_group_standardizer(zoo.vectors, layer_groups(layout))
  vectors = jnp.asarray(normaliser.normalise(zoo.vectors))
  embeddings = jnp.asarray(np.stack([
      dataset_embedding(t.x_train, t.y_train, data.num_classes, data.embed_dim,
                        config.seed) for t in tasks]))
  row_tasks = jnp.asarray(zoo.tasks)
  pipeline = build_pipeline(config, DataSpec((layout.size,),
                                             cond_dim=embeddings.shape[1]))

  def draw(key, n):
    rows = jax.random.randint(key, (n,), 0, vectors.shape[0])
    return vectors[rows], embeddings[row_tasks[rows]]

  draws, num_tasks = config.eval.draws, len(tasks)
  condition = jnp.repeat(embeddings, draws, 0)
  mean, std = jnp.asarray(normaliser.mean), jnp.asarray(normaliser.std)

  @jax.jit
  def generate(params, key):
    out = pipeline.generate(params, key, condition.shape[0], labels=condition).x
    return (out * std[None] + mean[None]).reshape(num_tasks, draws, layout.size)

  finetune = config.finetune
  zoo_options = config.zoo

  @jax.jit
  def scores(vector, key, x, y, x_test, y_test):
    """(accuracy, accuracy after fine-tuning) of one flat network on one task."""
    params = unflatten_weights(vector, layout)
    tuned = fit_classifier(params, key, x, y, epochs=finetune.epochs,
                           batch_size=zoo_options.batch_size,
                           learning_rate=zoo_options.learning_rate)
    return (classifier_accuracy(params, x_test, y_test),
            classifier_accuracy(tuned, x_test, y_test))

  many = jax.jit(jax.vmap(scores, (0, 0, None, None, None, None)))
  plain = jax.jit(jax.vmap(lambda v, x, y: classifier_accuracy(unflatten_weights(v, layout),
                                                               x, y), (0, None, None)))
  random_init = jax.vmap(lambda k: flatten_weights(init_classifier(k, layout.layer_sizes)))

  def evaluate(params, key):
    k_gen, k_rand, k_tune = jax.random.split(key, 3)
    generated = np.asarray(parallel.to_host(generate(params, k_gen)))
    sums = {}
    for t, task in enumerate(tasks):
      arrays = [jnp.asarray(a) for a in task]
      per_net = {}
      kinds = {"generated": jnp.asarray(generated[t]),
               "zoo": jnp.asarray(zoo.vectors[np.asarray(zoo.tasks) == t]),
               "random": random_init(jax.random.split(jax.random.fold_in(k_rand, t),
                                                      draws))}
      for kind, nets in kinds.items():
        if nets.shape[0] == 0:
          continue
        keys = jax.random.split(jax.random.fold_in(k_tune, t), nets.shape[0])
        accuracy, tuned = many(nets, keys, *arrays)
        for name, value in ((f"acc_{kind}", accuracy), (f"acc_finetuned_{kind}", tuned)):
          sums.setdefault(name, []).append(float(jnp.mean(value)))
        per_net[kind] = np.asarray(accuracy)
      if "zoo" in per_net:
        at_zoo = per_net["generated"] >= 0.9 * per_net["zoo"].mean()
        sums.setdefault("share_generated_at_zoo", []).append(float(at_zoo.mean()))
      other = tasks[(t + 1) % num_tasks]
      for kind in ("generated", "zoo") if num_tasks > 1 else ():
        if kind in per_net:
          sums.setdefault(f"acc_{kind}_other_task", []).append(float(jnp.mean(plain(
              kinds[kind], jnp.asarray(other.x_test), jnp.asarray(other.y_test)))))
    values = {name: float(np.mean(v)) for name, v in sums.items()}
    values["acc_ratio"] = values["acc_generated"] / values["acc_zoo"]
    return values, {}

  def sample(params, key):
    return {"weights": np.asarray(parallel.to_host(generate(params, key)))}, {}

  return pipeline_task(pipeline, draw, config.train.batch_size, evaluate=evaluate,
                       sample=sample)
