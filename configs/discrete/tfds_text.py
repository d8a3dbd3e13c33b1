"""Byte-level masked diffusion on a tfds text dataset (lm1b or tiny_shakespeare).

  python -m experiments.main --config=configs/discrete/tfds_text.py:lm1b \
      --workdir=workdirs/lm1b --config.data.data_dir=/path/to/tensorflow_datasets

Datasets must be prepared beforehand in array_record format (diffjax never downloads them;
a missing dataset fails with the command that prepares it). Texts are UTF-8 bytes (256
ids), packed into one stream separated by newlines and cut into windows of
data.sequence_length; data.max_characters > 0 reads only that many characters of each
split (lm1b holds 30M sentences). arg: "lm1b" or "tiny_shakespeare", optionally followed
by ",tiny".
"""
from configs.discrete.base import base_config, corpus_data

DATASETS = ("lm1b", "tiny_shakespeare")


def get_config(arg="lm1b"):
  name, *flags = (arg or "lm1b").split(",")
  if name not in DATASETS or not set(flags) <= {"tiny"}:
    raise ValueError(f"Unknown config argument {arg!r}; valid: one of {DATASETS}, "
                     "optionally followed by ',tiny'.")
  config = base_config()
  config.data = corpus_data(name, "bytes", sequence_length=128,
                            max_characters=20_000_000 if name == "lm1b" else 0)
  config.model.update(hidden_dim=512, depth=8, num_heads=8)
  config.train.update(batch_size=128, num_steps=200_000, eval_every=10_000)
  config.sample.num_steps = 128
  config.eval.update(num_samples=16, num_sequences=512, nelbo_samples=16, num_shown=8,
                     cfg_weights=())
  if "tiny" in flags:
    config.data.update(sequence_length=16, max_characters=0)
    config.model.update(hidden_dim=32, depth=1, num_heads=2)
    config.train.update(batch_size=8, num_steps=4, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.sample.num_steps = 16
    config.eval.update(num_samples=2, num_sequences=4, nelbo_samples=2, num_shown=2,
                       fast_compile=True)
  return config
