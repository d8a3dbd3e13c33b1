"""Default config sections read by the training engine (seed, train, optim, eval)."""
import ml_collections


def engine_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.train = ml_collections.ConfigDict(dict(
      num_steps=10_000,
      batch_size=256,
      steps_per_call=100,     # Training steps per compiled call (lax.scan).
      grad_accum_steps=1,     # Micro-batches averaged per step.
      model_axis_size=1,      # Devices that share (shard) each parameter; 1 = replicated.
      log_every=500,
      eval_every=5_000,
      checkpoint_every=1_000,
      keep_checkpoints=3,
  ))
  config.optim = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-3, schedule="cosine", warmup_steps=200,
      end_lr_factor=0.01, grad_clip=1.0, weight_decay=0.0, b1=0.9, b2=0.999,
      ema_decay=0.999,
      decay_steps=0))         # Schedule length; 0 = train.num_steps.
  config.eval = ml_collections.ConfigDict(dict(use_ema=True))
  return config
