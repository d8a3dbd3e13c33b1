"""What the adaptation configs share: fine-tuning a trained run's network (or embeddings)
from a source workdir, with a constant learning rate and no EMA."""
import ml_collections

from diffjax.train.defaults import engine_config


def adaptation_config(experiment, *, num_steps, batch_size, eval_every, learning_rate,
                      num_samples, tiny):
  """The engine sections of a run adapting source.workdir (default: the digits run of
  configs/guidance/digits.py); tiny: 4 steps in two calls, 16 samples."""
  config = engine_config()
  config.experiment = experiment
  config.source = ml_collections.ConfigDict(dict(workdir="workdirs/guided_digits",
                                                 use_ema=True))
  config.train.update(num_steps=num_steps, batch_size=batch_size, steps_per_call=100,
                      log_every=100, eval_every=eval_every, checkpoint_every=num_steps)
  config.optim.update(learning_rate=learning_rate, schedule="constant", warmup_steps=0,
                      ema_decay=0.0)
  config.eval.update(num_samples=num_samples, classifier_seed=0, use_ema=False)
  if tiny:
    config.train.update(num_steps=4, steps_per_call=2, log_every=2, eval_every=4,
                        checkpoint_every=4)
    config.eval.num_samples = 16
  return config
