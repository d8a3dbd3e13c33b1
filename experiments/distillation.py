"""Few-step and one-step generation (family `distillation`): a method of
`diffjax.distillation.DISTILLATION_METHODS` trains its student (consistency models, flow
maps, distribution matching) through the engine's players, from a teacher (a trained run
or the exact mixture oracle) and/or the data.

Evaluations generate eval.num_samples samples with the student's sampler at each step count
of eval.num_steps and score them: on vectors (toy2d, an oracle's target) W2 and energy
distance to held-out target samples (eval.metrics) and, against an oracle's mixture, mode
coverage; on the digits the proxy Fréchet distance and, for a class-conditional student,
the digits classifier's accuracy. Metric names end in _<n>step.
"""
import functools

import jax
import numpy as np

from diffjax import metrics as metrics_lib
from diffjax import plotting
from diffjax.distillation import build_student, distillation_task, mode_coverage
from diffjax.distillation.context import DATA_SOURCES
from diffjax.distillation.teachers import TEACHER_KINDS, mixture_of
from diffjax.image_metrics import dataset_metrics
from diffjax.image_plots import sample_grid_figure
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

DISTILLATION_KEYS = (
    Key("data.name", "name", names=DATA_SOURCES.names),
    Key("data.dim", "int", 1, meaning="dimension of the data"),
    Key("teacher.kind", "name", names=lambda: TEACHER_KINDS),
    Key("eval.num_steps", "ints", 1, meaning="student sampler steps evaluated"),
    Key("eval.num_samples", "int", 2, meaning="samples per evaluation"),
    Key("eval.reference_seed", "int", 0, 2 ** 31 - 2),
    Key("eval.metrics", "names", names=metrics_lib.METRICS.names),
    Key("sample.num_steps", "int", 1, meaning="student sampler steps of --mode=sample"),
)


def build_task(config) -> Task:
  """Builds the task; bad values, a bad teacher workdir and unknown names fail here,
  before any workdir is touched."""
  check_keys(config, DISTILLATION_KEYS)
  method, context, student = build_student(config)
  num_samples = config.eval.num_samples
  images = len(context.spec.shape) == 3

  @functools.partial(jax.jit, static_argnums=(2,))
  def generate(params, key, num_steps):
    k_labels, k_sample = jax.random.split(key)
    labels = context.random_labels(k_labels, num_samples)
    return student.generate(params, k_sample, num_samples, labels, num_steps).x, labels

  reference, _ = context.data.reference(config.eval.reference_seed, num_samples)
  target = context.teacher.target if context.teacher is not None else None
  data_name = config.data.get("name", "toy2d")

  def score(samples, labels):
    if images:
      return dataset_metrics(data_name, samples, labels)
    values = metrics_lib.compute_metrics(config.eval.metrics, samples, reference)
    if target is not None and data_name == "teacher":
      values.update(mode_coverage(samples, mixture_of(target)).metrics())
    return values

  def figure(samples, labels, title):
    if images:
      return sample_grid_figure(samples[:64], title=title)
    del labels
    return plotting.scatter_figure(samples, reference, title)

  def draw(params, key, num_steps):
    samples, labels = generate(params, key, num_steps)
    return (parallel.to_host(samples),
            None if labels is None else np.asarray(parallel.to_host(labels)))

  def evaluate(params, key):
    values, figures = {}, {}
    for i, num_steps in enumerate(config.eval.num_steps):
      samples, labels = draw(params, jax.random.fold_in(key, i), num_steps)
      values.update({f"{k}_{num_steps}step": v for k, v in score(samples, labels).items()})
      figures[f"samples_{num_steps}step"] = figure(
          samples, labels, f"{method.name}, {num_steps} step(s)")
    return values, figures

  def sample(params, key):
    num_steps = config.sample.num_steps
    samples, labels = draw(params, key, num_steps)
    arrays = {"samples": samples} if labels is None else {"samples": samples,
                                                         "labels": labels}
    return arrays, {"samples": figure(samples, labels, f"{method.name}, {num_steps} step(s)")}

  return distillation_task(config, context, student, evaluate, sample)
