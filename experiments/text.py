"""Masked discrete diffusion (and its autoregressive baseline) on token sequences: the
shared pipeline (`diffjax.pipeline`, DataSpec with the vocabulary) on host-fed int32
batches from `diffjax.data.text`, sampled with config.sample's token sampler.

Data (config.data.name): "arithmetic" (statements a+b=c with an exact likelihood; evaluations
count correct samples, prompt-conditioned accuracy with and without unsupervised CFG, and the
NELBO's gap to the true NLL), or a character / byte corpus ("gnu_manuals", "lm1b",
"tiny_shakespeare"; evaluations report validation bits per token). `--mode=sample` writes the
decoded text to samples.npz (array "text") and as a figure to plots/ and TensorBoard.

Config sections read here: data, eval (num_sequences, nelbo_samples, num_shown, prompt,
cfg_weights, label_cfg_weights, fast_compile); the pipeline reads path, objective, model,
sample and train.label_dropout. Every key is checked before the workdir is touched.
"""
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.categorical import METHODS
from diffjax.data import text as text_data
from diffjax.errors import ConfigError
from diffjax.models import MODELS
from diffjax.models.token_transformer import POSITIONS
from diffjax.objectives import OBJECTIVES
from diffjax.paths import MASKING_SCHEDULES, PATHS
from diffjax.pipeline import DataSpec, build_pipeline, component_options, pipeline_record
from diffjax.solvers import SAMPLERS, discrete, sample
from diffjax.text_plots import text_figure
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys


def _tokens(registry):
  """The names a registry's components declare as modelling tokens (`models_tokens`)."""
  return lambda: tuple(n for n in registry.names()
                       if getattr(registry.get(n), "models_tokens", False))


TEXT_KEYS = (
    Key("data.name", "name", names=text_data.TOKEN_DATA.names),
    Key("data.sequence_length", "int", 0, meaning="0: the arithmetic language's own"),
    Key("data.digits", "int", 1, 6, meaning="digits of each operand"),
    Key("data.tokenizer", "name", names=lambda: tuple(sorted(text_data.TOKENIZERS))),
    Key("data.max_characters", "int", 0, meaning="0: the whole text"),
    Key("path.name", "name", names=_tokens(PATHS)),
    Key("path.schedule", "name", names=MASKING_SCHEDULES.names),
    Key("objective.name", "name", names=_tokens(OBJECTIVES)),
    Key("model.name", "name", names=_tokens(MODELS)),
    Key("model.hidden_dim", "int", 1),
    Key("model.depth", "int", 1),
    Key("model.num_heads", "int", 1),
    Key("model.positions", "name", names=lambda: POSITIONS),
    Key("model.time_input", "bool"),
    Key("model.causal", "bool"),
    Key("model.num_classes", "int", 0, meaning="0: unconditional"),
    Key("model.dtype", "name", names=lambda: ("bfloat16", "float32")),
    Key("sample.temperature", "float", 0.0, open_low=True),
    Key("sample.top_p", "float", 0.0, 1.0, open_low=True),
    Key("sample.method", "name", names=lambda: METHODS),
    Key("sample.cache", "bool"),
    Key("eval.num_sequences", "int", 1, meaning="validation sequences"),
    Key("eval.nelbo_samples", "int", 1, meaning="time draws per validation NELBO"),
    Key("eval.num_shown", "int", 0),
    Key("eval.fast_compile", "bool"),
    Key("eval.cfg_weights", "floats", meaning="unsupervised CFG weights"),
    Key("eval.label_cfg_weights", "floats", meaning="label CFG weights"),
)


def _check_options(config, section, registry):
  """Refuses a key of config.<section> that the component it names does not take (before
  a TypeError could)."""
  factory = registry.get(config[section].name)
  params = inspect.signature(factory).parameters
  if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
    return
  for key in component_options(config[section]):
    if key not in params:
      taken = [p for p in params if p not in ("path", "data_shape")]
      raise ConfigError(f"{section}.{key} does not apply to {section}.name="
                        f"{config[section].name!r}, which takes: {', '.join(taken) or 'none'}.")


def _check_sampler(pipeline, config, length):
  """Refuses a sampler that does not fit the model or the sequence: predictions the fields
  lack, options it does not take, too few steps, a cache with a time-conditioned network."""
  solver, options = pipeline.solver, dict(pipeline.sampler_options)
  build, problem = SAMPLERS.get(solver).build, None
  try:
    stepper = build(pipeline.path, **options)
  except ConfigError:
    raise
  except (TypeError, ValueError) as error:
    problem = error
    try:  # Built without options, a sampler of other data still says what it reads.
      stepper = build(pipeline.path)
    except (TypeError, ValueError):
      stepper = None
  given = pipeline.fields(None).names
  missing = [n for n in (stepper.needs if stepper else ()) if n not in given]
  if missing:
    raise ConfigError(f"sample.solver={solver!r} reads {missing}, which the "
                      f"{config.objective.name} objective does not give (it gives "
                      f"{list(given)}); choose a token sampler that reads them.")
  if problem is not None:
    raise ConfigError(f"sample.solver={solver!r} does not take the sample options "
                      f"{sorted(options)} on the masked path: {problem}")
  needed = discrete.minimum_num_steps(solver, length, options)
  if pipeline.num_steps < needed:
    raise ConfigError(f"sample.num_steps={pipeline.num_steps} is too few for {solver!r} on "
                      f"{length} positions: it needs >= {needed}.")
  if options.get("cache") and config.model.get("time_input", True):
    raise ConfigError("sample.cache=True reuses logits across time steps: it needs a "
                      "time-free network (model.time_input=False).")


def build_task(config) -> Task:
  """Builds the text task; bad names and values fail here, before any workdir is touched."""
  check_keys(config, TEXT_KEYS)
  _check_options(config, "objective", OBJECTIVES)
  _check_options(config, "model", MODELS)
  data = text_data.load_token_data(config.data.name, component_options(config.data),
                                   num_validation=config.eval.num_sequences,
                                   seed=config.seed)
  length = data.length
  pipeline = build_pipeline(config, DataSpec((length,), data.num_classes,
                                             vocab_size=data.vocab_size))
  path, model, objective = pipeline.path, pipeline.model, pipeline.objective
  if config.model.get("causal", False) != objective.causal:
    raise ConfigError(f"model.causal={config.model.get('causal', False)} does not fit the "
                      f"{config.objective.name} objective, which needs "
                      f"model.causal={objective.causal}.")
  _check_sampler(pipeline, config, length)
  cfg_weights = tuple(float(w) for w in config.eval.get("cfg_weights", ()))
  label_weights = tuple(float(w) for w in config.eval.get("label_cfg_weights", ()))
  if cfg_weights and data.language is None:
    raise ConfigError(f"eval.cfg_weights={cfg_weights} guide answers infilled from prompts "
                      "of the arithmetic language; set it to () for a corpus.")
  if any(cfg_weights) and "logits" not in pipeline.fields(None).names:
    raise ConfigError(f"eval.cfg_weights={cfg_weights}: unsupervised CFG needs a masked "
                      "model; use (0.0,) or () for the autoregressive objective.")
  if label_weights and not pipeline.num_classes:
    raise ConfigError(f"eval.label_cfg_weights={label_weights} guide by label: they need a "
                      "class-conditional model (model.num_classes > 0).")
  num_samples = config.eval.num_samples
  x_start = np.full((num_samples, length), path.mask_id, np.int32)
  prompt = config.eval.get("prompt", "")
  if not isinstance(prompt, str):
    raise ConfigError(f"eval.prompt={prompt!r} must be a string.")
  if prompt:
    x_start[:] = text_data.prompt_sequence(data.tokenizer.encode(prompt), length,
                                           path.mask_id)
  stream = text_data.TokenStream(data.draw, config.train.batch_size, data.vocab_size,
                                 seed=config.seed,
                                 labels=data.labels if pipeline.num_classes else None,
                                 process_index=jax.process_index(),
                                 process_count=jax.process_count())

  # Seconds-long smoke runs compile evaluation without XLA's backend optimisations (about
  # 3x faster to compile on CPU, slower to run).
  jit = (functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
         if config.eval.fast_compile else jax.jit)

  def loss(params, key, shard, step, batch):
    del step
    return pipeline.loss(params, key, shard, batch["tokens"], batch.get("label"))

  def run_sampler(fields, x0, key):
    return sample(pipeline.solver, fields, path, x0, key, num_steps=pipeline.num_steps,
                  **pipeline.sampler_options)

  @jit
  def generate(params, key):
    result = run_sampler(pipeline.fields(params), jnp.asarray(x_start), key)
    return result.x, result.nfe

  @jit
  def validation_nll(params, key, tokens):
    return objective.sequence_nll(model.apply, params, key, tokens,
                                  num_samples=config.eval.nelbo_samples)

  @jit
  def infill(params, key, x_prompt, free, weight):
    fields = pipeline.fields(params)
    if "logits" in fields.names:  # A masked model (weight 0: its own conditional).
      fields = discrete.unsupervised_cfg(fields, ~free, path.mask_id, weight)
    return run_sampler(fields, x_prompt, key).x

  @jit
  def guided_by_label(params, key, labels, weight):
    fields = discrete.classifier_free_guidance(pipeline.fields(params, labels),
                                               pipeline.fields(params), weight)
    return run_sampler(fields, jnp.asarray(x_start), key).x

  title = f"{config.data.name}, {pipeline.solver}"

  def evaluate(params, key):
    k_gen, k_nll, k_infill, k_label = jax.random.split(key, 4)
    tokens, nfe = generate(params, k_gen)
    tokens = parallel.to_host(tokens)
    per_sequence = parallel.to_host(validation_nll(params, k_nll,
                                                   jnp.asarray(data.validation)))
    values = {"nfe": int(parallel.to_host(nfe)),
              "validation_nats_per_token": float(per_sequence.mean() / length),
              "validation_bits_per_token": float(per_sequence.mean() / length / np.log(2))}
    language = data.language
    if language is not None:
      values["fraction_correct"] = float(language.is_correct(tokens).mean())
      values["nelbo_minus_true_nll"] = float(per_sequence.mean() - language.nll)
      values["nelbo_standard_error"] = float(per_sequence.std() / np.sqrt(len(per_sequence)))
      x_prompt, free = language.prompts(data.validation[:num_samples], path.mask_id)
      for weight in cfg_weights:
        filled = parallel.to_host(infill(params, k_infill, jnp.asarray(x_prompt),
                                         jnp.asarray(free), weight))
        values[f"prompt_accuracy_cfg{weight:g}"] = float(language.is_correct(filled).mean())
      labels = np.arange(num_samples) % max(pipeline.num_classes, 1)
      for weight in label_weights:
        out = parallel.to_host(guided_by_label(params, k_label, jnp.asarray(labels), weight))
        right = language.is_correct(out) & (language.labels(out) == labels)
        values[f"label_accuracy_cfg{weight:g}"] = float(right.mean())
    return values, {"samples": text_figure(data.decode(tokens[:config.eval.num_shown]),
                                           title)}

  def sample_text(params, key):
    tokens, _ = generate(params, key)
    tokens = parallel.to_host(tokens)
    lines = data.decode(tokens)
    return ({"tokens": tokens, "text": np.asarray(lines)},
            {"samples": text_figure(lines[:config.eval.num_shown], title)})

  return Task(init_params=model.init, loss=loss, evaluate=evaluate, sample=sample_text,
              record=pipeline_record(pipeline), batch_size=config.train.batch_size,
              data=stream.iterate)
