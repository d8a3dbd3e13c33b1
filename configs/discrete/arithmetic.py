"""Masked diffusion on the arithmetic language "a+b=cd" (exact NLL ln 100 nats).

  python -m experiments.main --config=configs/discrete/arithmetic.py --workdir=workdirs/arith

A time-free (RADD) token transformer trained on the NELBO; evaluations report the fraction
of correct sampled statements (first-hitting sampler, 6 network calls), the NELBO's gap to
the true NLL with its standard error, the accuracy of answers infilled from the operands
without and with unsupervised classifier-free guidance, and (with `:labels`) the accuracy of
statements generated for a requested carry class with classifier-free guidance.
arg: "tiny" (seconds, for tests), "labels" (class-conditional, condition dropout 0.1),
"ancestral" (1000 ancestral steps with output caching instead of first-hitting).
Two-digit operands ("ab+cd=efg", 9 tokens): --config.data.digits=2
--config.sample.num_steps=9 (first-hitting takes one step per token; needs many more
training steps).
"""
from configs.discrete.base import base_config

ARGS = ("tiny", "labels", "ancestral")


def get_config(arg=None):
  flags = [a for a in (arg or "").split(",") if a]
  if not set(flags) <= set(ARGS):
    raise ValueError(f"Unknown config argument {arg!r}; valid: a comma-separated subset of "
                     f"{ARGS} (or none).")
  config = base_config()
  if "labels" in flags:
    config.model.num_classes = 2
    config.eval.label_cfg_weights = (0.0, 2.0)
  if "ancestral" in flags:
    config.sample.update(solver="masked_ancestral", num_steps=1000, cache=True)
  if "tiny" in flags:
    config.data.digits = 2
    config.model.update(hidden_dim=32, depth=1, num_heads=2)
    config.train.update(batch_size=32, num_steps=20, steps_per_call=10, log_every=10,
                        eval_every=20, checkpoint_every=20)
    config.sample.num_steps = 20 if "ancestral" in flags else 9
    config.eval.update(num_samples=16, num_sequences=16, nelbo_samples=2, num_shown=4,
                       fast_compile=True)
  return config
