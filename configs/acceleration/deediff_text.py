"""DeeDiff on a masked-diffusion text run: exits with uncertainty estimates after each block
of the arithmetic language's token transformer (configs/discrete/arithmetic.py), trained
on the frozen network, and early-exit sampling.

  python -m experiments.main --config=configs/acceleration/deediff_text.py \
      --workdir=workdirs/deediff_arith --config.source.workdir=workdirs/arith

(--config.method.train_backbone=True trains the transformer jointly with its exits, as
the paper does; threshold 0 is then that fine-tuned network.)

Trains the exits and uncertainty modules of `diffjax.acceleration.deediff` on the frozen
transformer with the token form of DeeDiff's losses (`token_errors`: cross-entropy at the
masked positions, tanh of it the pseudo uncertainty), then samples eval.num_samples
statements with the first-hitting sampler (one network call per token) at each exit
threshold of eval.thresholds (0: the full network) and reports per threshold the fraction
of correct statements (`fraction_correct_t<thr>`), the held-out NELBO per token
(`nelbo_per_token_t<thr>`), the blocks run per sample and network call, i.e. per step
(`layers_t<thr>`), those the batch ran (`loop_layers_t<thr>`), the fraction of samples
that differ from the full network's (`changed_t<thr>`) and the wall time of one batch.
`:tiny` runs in seconds on a source of configs/discrete/arithmetic.py:tiny with
--config.model.depth=2.
"""
from configs.acceleration.base import accelerated
from configs.common import parse_arg
from configs.discrete import arithmetic

SOURCE_WORKDIR = "workdirs/arith"


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = accelerated(arithmetic.get_config("tiny" if tiny else None),
                       dict(name="deediff", train_backbone=False), SOURCE_WORKDIR, "tokens")
  config.train.update(batch_size=128, num_steps=3000, steps_per_call=50, log_every=250,
                      eval_every=3000, checkpoint_every=1000)
  config.optim.update(learning_rate=1e-3, warmup_steps=50, schedule="constant")
  config.eval.thresholds = (0.0, 0.1, 0.15, 0.2, 0.5, 0.8, 0.9)
  config.sample.threshold = 0.1
  if tiny:
    config.model.depth = 2   # DeeDiff needs two blocks at least.
    config.train.update(num_steps=4, batch_size=16, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.optim.warmup_steps = 0
    config.eval.thresholds = (0.0, 1.0)   # The full network; every sample at exit 1.
  return config
