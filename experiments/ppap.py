"""PPAP on the digits (family `ppap`): noise-range expert classifiers, trained by knowledge
transfer from a clean classifier, guiding a trained digits run's unconditional model.

The engine trains ppap.num_experts noise-aware classifiers (`diffjax.guidance.ppap`),
expert k on times t in [b_k, b_{k+1}) (ppap.boundaries, or equal intervals when empty;
one expert over [0, 1] is the single noise-aware classifier), every one by cross-entropy
to the soft labels of a clean digits classifier (seed ppap.teacher_seed) on clean images:
ppap.transfer_data = "samples" draws them from the prior run eval.prior_workdir itself
(ppap.num_transfer unguided samples, 20 DDIM steps: data-free), "real" from the training
digits (the experts then see real data, still with the teacher's labels). Evaluation
guides the prior's unconditional model to the classes 0..9 in turn
(eval.num_samples, 20 DDIM steps) with the experts (`classifier` guidance) and, as the
baseline, with the clean teacher applied to the noisy state x_t directly ("clean"), at each
scale of eval.guidance_scales: the real-digits classifier's accuracy (seed 0, another
network than the teacher), the pixel 1-NN's and the proxy Fréchet distance
(`accuracy_experts_s<scale>`, `accuracy_clean_s<scale>`, ...), and the experts' agreement
with the teacher on noised held-out digits at each t of eval.noise_times.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, image_plots
from diffjax.data import load_image_dataset
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.errors import ConfigError
from diffjax.guidance import noisy_classifier
from diffjax.guidance.ppap import (check_boundaries, expert_logits, transfer_loss,
                                   uniform_boundaries)
from diffjax.train import Task
from diffjax.train.validation import Key, check_keys
from experiments.guidance import classifier_guided_digits
from experiments.plug_and_play import load_prior

TRANSFER_DATA = ("samples", "real")
PPAP_KEYS = (
    Key("ppap.num_experts", "int", 1),
    Key("ppap.boundaries", "floats", 0.0, 1.0, meaning="empty: equal intervals"),
    Key("ppap.transfer_data", "name", names=lambda: TRANSFER_DATA),
    Key("ppap.num_transfer", "int", 1, meaning="prior samples to transfer on"),
    Key("ppap.teacher_seed", "int", 0, 2 ** 31 - 1),
    Key("eval.num_samples", "int", 1),
    Key("eval.guidance_scales", "floats", 0.0),
    Key("eval.noise_times", "floats", 0.0, 1.0),
)


def teacher_logits(teacher):
  """x (B, 8k, 8k, 1) -> (B, 10) logits of a trained `image_metrics.DigitsClassifier`,
  differentiable (for guidance)."""
  module = image_metrics.DigitsMLP(feature_dim=teacher.feature_dim)
  return lambda x: module.apply({"params": teacher.params}, x)[0]


def build_ppap(config) -> Task:
  """Builds the task; bad values (boundaries that do not cover [0, 1], ...) and a bad prior
  workdir fail here, before any workdir is touched."""
  check_keys(config, PPAP_KEYS)
  ppap = config.ppap
  boundaries = (check_boundaries(ppap.boundaries) if len(ppap.boundaries)
                else uniform_boundaries(ppap.num_experts))
  if len(boundaries) - 1 != ppap.num_experts:
    raise ConfigError(f"ppap.boundaries has {len(boundaries) - 1} intervals but "
                      f"ppap.num_experts={ppap.num_experts}: they must match.")
  source = load_image_dataset(config.data.name, image_size=config.data.image_size,
                              data_dir=config.data.data_dir, split="train")
  shape = tuple(source.image_shape)
  prior = load_prior(config.eval.prior_workdir, shape)
  path = prior.path
  model = noisy_classifier(shape, 10, **config.classifier)
  teacher = image_metrics.digits_classifier(ppap.teacher_seed)
  logits_of = teacher_logits(teacher)
  pipeline = prior.pipeline.with_sampler("ddim", 20)

  if ppap.transfer_data == "samples":
    bank = np.asarray(jnp.clip(jax.jit(lambda k: pipeline.generate(
        prior.params, k, ppap.num_transfer, None).x)(jax.random.PRNGKey(config.seed)), -1, 1))
  else:
    train, _ = digits_arrays("train")
    bank = np.asarray(dequantize(train, DIGITS_NUM_LEVELS))
  teacher_probs = np.asarray(jax.nn.softmax(logits_of(jnp.asarray(bank)), -1))
  batch_size = config.train.batch_size

  def data(start_step):
    step = start_step
    while True:
      index = np.random.default_rng([config.seed, step]).integers(0, len(bank), batch_size)
      yield {"x1": bank[index], "probs": teacher_probs[index]}
      step += 1

  def init_params(key):
    return [model.init(jax.random.fold_in(key, k)) for k in range(ppap.num_experts)]

  def loss(params, key, shard, step, batch):
    del step
    x1, probs = shard(batch["x1"]), shard(batch["probs"])
    total, aux = 0.0, {}
    for k, expert in enumerate(params):
      k_source, k_loss = jax.random.split(jax.random.fold_in(key, k))
      x0 = path.source_sample(k_source, x1.shape)
      value, extra = transfer_loss(path, model.apply, expert, k_loss, x0, x1, probs,
                                   (float(boundaries[k]), float(boundaries[k + 1])))
      total = total + value
      aux[f"agreement_{k}"] = extra["agreement"]
    return total, aux

  num = config.eval.num_samples
  expert_logits_fn = lambda experts, x, t: expert_logits(model.apply, experts, boundaries)(x, t)
  test, _ = digits_arrays("test")
  test = jnp.asarray(dequantize(test, DIGITS_NUM_LEVELS))
  test_teacher = jnp.argmax(logits_of(test), -1)

  @jax.jit
  def agreement(params, key, t):
    """The experts' agreement with the teacher's label on noised held-out digits at t."""
    k_source, k_path = jax.random.split(key)
    t_b = jnp.full((test.shape[0],), t)
    xt = path.sample(k_path, t_b, path.source_sample(k_source, test.shape), test)
    logits = expert_logits_fn(params, xt, t)
    return jnp.mean(jnp.argmax(logits, -1) == test_teacher)

  def evaluate(params, key):
    values = {f"teacher_agreement_t{t:g}": float(agreement(params, key, t))
              for t in config.eval.noise_times}
    figures = {}
    classifiers = {"experts": (expert_logits_fn, params),
                   "clean": (lambda p, x, t: logits_of(x), None)}
    for kind, (apply, classifier_params) in classifiers.items():
      labels, draws = classifier_guided_digits(pipeline, prior.params, apply,
                                               classifier_params, key,
                                               config.eval.guidance_scales, num)
      for scale, x in draws.items():
        name = f"{kind}_s{scale:g}"
        values.update(image_metrics.digits_scores(x, np.asarray(labels), name))
        figures[name] = image_plots.sample_grid_figure(
            x[:50], num_columns=10, title=f"{kind} guidance, scale {scale:g}: accuracy "
            f"{values[f'accuracy_{name}']:.3f}")
    return values, figures

  def sample(params, key):
    return {}, evaluate(params, key)[1]

  return Task(init_params=init_params, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=batch_size, data=data)
