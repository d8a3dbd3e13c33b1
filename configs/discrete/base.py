"""The text family (`experiments.text`): masked discrete diffusion and its autoregressive
twin on token sequences.
"""
import ml_collections

from diffjax.train.defaults import engine_config


def base_config() -> ml_collections.ConfigDict:
  """Defaults: the arithmetic language with one-digit operands (6 tokens), the masked path
  with a linear schedule, the NELBO, a small time-free transformer with learned positions
  (it learned the sums in about a third of the steps that rotary positions needed),
  first-hitting sampling (one step per token)."""
  config = engine_config()
  config.experiment = "text"
  config.data = ml_collections.ConfigDict(dict(name="arithmetic", digits=1,
                                               sequence_length=0))
  config.path = ml_collections.ConfigDict(dict(name="masked", schedule="linear"))
  config.objective = ml_collections.ConfigDict(dict(
      name="masked_diffusion", estimator="nelbo", time_sampling="low_discrepancy"))
  config.model = ml_collections.ConfigDict(dict(
      name="token_transformer", hidden_dim=64, depth=3, num_heads=4, positions="learned",
      time_input=False, causal=False, num_classes=0, dtype="float32"))
  config.train.update(batch_size=128, num_steps=3000, steps_per_call=50, log_every=250,
                      eval_every=1000, checkpoint_every=500)
  config.train.label_dropout = 0.1
  config.optim.update(learning_rate=2e-3, warmup_steps=200, ema_decay=0.999)
  # The sampler's options beside solver and num_steps (first_hitting: one step per token).
  config.sample = ml_collections.ConfigDict(dict(
      solver="first_hitting", num_steps=6, temperature=1.0, top_p=1.0, method="inverse_cdf"))
  config.eval.update(num_samples=1000, num_sequences=1000, nelbo_samples=8, num_shown=24,
                     prompt="", cfg_weights=(0.0, 1.0), label_cfg_weights=(),
                     fast_compile=False)
  return config


def corpus_data(name, tokenizer, sequence_length, max_characters=0, data_dir=""):
  """A data section of a text corpus (gnu_manuals, lm1b, tiny_shakespeare)."""
  return ml_collections.ConfigDict(dict(
      name=name, tokenizer=tokenizer, sequence_length=sequence_length,
      max_characters=max_characters, data_dir=data_dir))
