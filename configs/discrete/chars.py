"""Character-level masked diffusion on the GNU manuals corpus, and its autoregressive twin.

  python -m experiments.main --config=configs/discrete/chars.py --workdir=workdirs/chars
  python -m experiments.main --config=configs/discrete/chars.py:ar --workdir=workdirs/chars_ar

The corpus is built offline from the Info manuals that Debian's Essential packages
coreutils, diffutils, findutils, grep, sed and gzip install (GFDL 1.3+; see
diffjax/data/text.py), with a fixed split (every tenth 8 KB block is validation).
Both runs use the same transformer (the `:ar` one causal, sampled left to right) for the
same steps on the same batches and report validation bits per character: an upper bound
(the NELBO) for masked diffusion, the exact value for the autoregressive model.
arg: "ar", "tiny" (comma-joined).
"""
import ml_collections

from configs.discrete.base import base_config, corpus_data

ARGS = ("ar", "tiny")


def get_config(arg=None):
  flags = [a for a in (arg or "").split(",") if a]
  if not set(flags) <= set(ARGS):
    raise ValueError(f"Unknown config argument {arg!r}; valid: a comma-separated subset of "
                     f"{ARGS} (or none).")
  config = base_config()
  config.data = corpus_data("gnu_manuals", "chars", sequence_length=64)
  # Rotary positions: a character model needs offsets to its neighbours, which rotary
  # attention gives directly (learned absolute positions left the masked model near the
  # unigram level several times longer; the arithmetic language, whose digits have fixed
  # places, is the other way round).
  config.model.update(hidden_dim=128, depth=3, num_heads=4, positions="rope")
  config.train.update(batch_size=32, num_steps=2000, eval_every=1000, log_every=250)
  config.optim.update(learning_rate=2e-3, warmup_steps=200)
  config.sample.num_steps = 64
  config.eval.update(num_samples=16, num_sequences=256, nelbo_samples=16, num_shown=8,
                     cfg_weights=())
  if "ar" in flags:
    config.objective = ml_collections.ConfigDict(dict(name="autoregressive"))
    config.model.causal = True
    config.sample.solver = "autoregressive"
  if "tiny" in flags:
    config.data.sequence_length = 32
    config.model.update(hidden_dim=32, depth=1, num_heads=2)
    config.train.update(batch_size=16, num_steps=20, steps_per_call=10, log_every=10,
                        eval_every=20, checkpoint_every=20)
    config.sample.num_steps = 32
    config.eval.update(num_samples=4, num_sequences=8, nelbo_samples=2, num_shown=4,
                       fast_compile=True)
  return config
