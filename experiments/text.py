"""Masked discrete diffusion (and its autoregressive baseline) on token sequences:
host-fed int32 batches -> masking process -> NELBO / DCE objective -> token transformer ->
token samplers (first-hitting, ancestral with caching, semi-autoregressive), with the
engine's sharding, EMA, checkpoints, resumption, preemption and NaN stop unchanged.

Data (config.data.name): "arithmetic" (statements a+b=c with an exact likelihood; evaluations
count correct samples, prompt-conditioned accuracy with and without unsupervised CFG, and the
NELBO's gap to the true NLL), or a character / byte corpus ("gnu_manuals", "lm1b",
"tiny_shakespeare"; evaluations report validation bits per token). `--mode=sample` writes the
decoded text to samples.npz (array "text") and as a figure to plots/ and TensorBoard.

Config sections read here: data, path, objective, model, sample, eval (+ train.label_dropout).
"""
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from diffjax.data import text as text_data
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.objectives import autoregressive as ar_objective
from diffjax.objectives import masked as masked_objective
from diffjax.paths.masked import masking_path
from diffjax.solvers import discrete
from diffjax.solvers.sampling import SAMPLERS
from diffjax.train import Task, parallel
from diffjax.pipeline import component_options

OBJECTIVES = ("masked_diffusion", "autoregressive")


def text_figure(lines, title=""):
  """Decoded samples, one per line, as a figure (for plots/ and TensorBoard)."""
  lines = [line.replace("\n", "\u21b5") for line in lines]
  fig = Figure(figsize=(10, 0.17 * len(lines) + 0.8))
  ax = fig.subplots()
  ax.axis("off")
  ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top")
  ax.set_title(title)
  return fig


def _data(config):
  """(draw, vocab_size, tokenizer/language, validation tokens (N, L), length)."""
  if config.data.name == "arithmetic":
    language = text_data.ArithmeticLanguage(config.data.digits)
    validation = language.sample(np.random.default_rng((config.seed, 99)),
                                 config.eval.num_sequences)
    return language.sample, language.vocab_size, language, validation, language.length
  corpus = text_data.load_text_corpus(
      config.data.name, tokenizer=config.data.tokenizer, data_dir=config.data.data_dir or None,
      max_characters=config.data.max_characters)
  length = config.data.sequence_length
  draw = text_data.random_windows(corpus.train, length)
  validation = text_data.validation_windows(corpus.validation, length,
                                            config.eval.num_sequences)
  return draw, corpus.vocab_size, corpus.tokenizer, validation, length


def build_task(config) -> Task:
  """Builds the text task; bad names and values fail here, before any workdir is touched."""
  if config.objective.name not in OBJECTIVES:
    raise ConfigError(f"Unknown objective {config.objective.name!r} for text; valid: "
                      f"{OBJECTIVES}.")
  draw, vocab_size, language, validation, length = _data(config)
  arithmetic = config.data.name == "arithmetic"
  path = masking_path(config.path.schedule, vocab_size=vocab_size,
                      **component_options(config.path, ("schedule",)))
  masked = config.objective.name == "masked_diffusion"
  if masked:
    objective = masked_objective.masked_diffusion(
        path, **component_options(config.objective))
  else:
    objective = ar_objective.autoregressive(path)
  model_options = component_options(config.model)
  if not masked:
    model_options["causal"] = True
  model = build_model(config.model.name, (length,), vocab_size=vocab_size,
                      mask_id=path.mask_id, **model_options)
  num_classes = config.model.get("num_classes", 0)
  if num_classes and not arithmetic:
    raise ConfigError("model.num_classes > 0 needs labelled data (data.name='arithmetic').")
  sampler_name = config.sample.sampler if masked else "autoregressive"
  sampler_factory = SAMPLERS.get(sampler_name).build
  # config.sample holds the options of every sampler; each takes those it knows.
  accepted = inspect.signature(sampler_factory).parameters
  sampler_options = {k: v for k, v in config.sample.items() if k in accepted and k != "path"}
  if sampler_options.get("cache") and config.model.get("time_input", True):
    raise ConfigError("sample.cache=True reuses logits across time steps: it needs a "
                      "time-free network (model.time_input=False).")
  sampler_factory(path, **sampler_options)  # Validates the options before training.
  stream = text_data.TokenStream(draw, config.train.batch_size, vocab_size, seed=config.seed,
                                 labels=language.labels if num_classes else None,
                                 process_index=jax.process_index(),
                                 process_count=jax.process_count())
  num_samples = config.sample.num_samples
  prompt = config.sample.get("prompt", "")
  x_start = np.full((num_samples, length), path.mask_id, np.int32)
  if prompt:
    tokenizer = language.tokenizer if arithmetic else language
    x_start[:] = text_data.prompt_sequence(tokenizer.encode(prompt), length, path.mask_id)

  # Seconds-long smoke runs compile evaluation without XLA's backend optimisations (about
  # 3x faster to compile on CPU, slower to run).
  jit = (functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
         if config.eval.fast_compile else jax.jit)

  def loss(params, key, shard, step, batch):
    del step
    k_drop, k_loss = jax.random.split(key)
    x1 = shard(batch["tokens"])
    cond = None
    if num_classes:  # Condition dropout for classifier-free guidance.
      drop = jax.random.bernoulli(k_drop, config.train.label_dropout, batch["label"].shape)
      cond = jnp.where(drop, num_classes, batch["label"])
    return objective.loss(model.apply, params, k_loss, None, x1, cond)

  def run_sampler(fields, x0, key, name=sampler_name, options=None):
    return discrete.sample_tokens(name, fields, path, x0, key,
                                  num_steps=config.sample.get("num_steps") or None,
                                  **(sampler_options if options is None else options))

  @jit
  def generate(params, key):
    result = run_sampler(objective.fields(model.apply, params), jnp.asarray(x_start), key)
    return result.x, result.nfe

  @jit
  def validation_nll(params, key, tokens):
    if masked:
      return masked_objective.nelbo(path, model.apply, params, key, tokens,
                                    num_samples=config.eval.nelbo_samples)
    return ar_objective.sequence_nll(model.apply, params, tokens, path.mask_id)

  @jit
  def infill(params, key, x_prompt, free, weight):
    fields = objective.fields(model.apply, params)
    fields = discrete.unsupervised_cfg(fields, ~free, path.mask_id, weight)
    return run_sampler(fields, x_prompt, key, "first_hitting", {}).x

  @jit
  def guided_by_label(params, key, labels, weight):
    fields = discrete.classifier_free_guidance(
        objective.fields(model.apply, params, labels),
        objective.fields(model.apply, params, jnp.full_like(labels, num_classes)), weight)
    return run_sampler(fields, jnp.asarray(x_start), key).x

  def decode(tokens):
    if arithmetic:
      return language.decode(tokens)
    return [language.decode(row) for row in tokens]

  def evaluate(params, key):
    k_gen, k_nll, k_infill, k_label = jax.random.split(key, 4)
    tokens, nfe = generate(params, k_gen)
    tokens = parallel.to_host(tokens)
    per_sequence = parallel.to_host(validation_nll(params, k_nll, jnp.asarray(validation)))
    values = {"nfe": int(parallel.to_host(nfe)),
              "validation_nats_per_token": float(per_sequence.mean() / length),
              "validation_bits_per_token": float(per_sequence.mean() / length / np.log(2))}
    if arithmetic:
      values["fraction_correct"] = float(language.is_correct(tokens).mean())
      values["nelbo_minus_true_nll"] = float(per_sequence.mean() - language.nll)
      values["nelbo_standard_error"] = float(per_sequence.std() / np.sqrt(len(per_sequence)))
      x_prompt, free = language.prompts(validation[:num_samples], path.mask_id)
      for weight in config.eval.cfg_weights:
        filled = parallel.to_host(infill(params, k_infill, jnp.asarray(x_prompt),
                                         jnp.asarray(free), float(weight)))
        values[f"prompt_accuracy_cfg{weight:g}"] = float(language.is_correct(filled).mean())
      if num_classes:
        labels = np.arange(num_samples) % num_classes
        for weight in config.eval.label_cfg_weights:
          out = parallel.to_host(guided_by_label(params, k_label, jnp.asarray(labels),
                                                 float(weight)))
          right = language.is_correct(out) & (language.labels(out) == labels)
          values[f"label_accuracy_cfg{weight:g}"] = float(right.mean())
    lines = decode(tokens[:config.eval.num_shown])
    return values, {"samples": text_figure(lines, f"{config.data.name}, {sampler_name}")}

  def sample(params, key):
    tokens, _ = generate(params, key)
    tokens = parallel.to_host(tokens)
    lines = decode(tokens)
    figure = text_figure(lines[:config.eval.num_shown], f"{config.data.name}, {sampler_name}")
    return {"tokens": tokens, "text": np.asarray(lines)}, {"samples": figure}

  return Task(init_params=model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate)


