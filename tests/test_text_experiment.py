"""The text experiment end to end on the engine: integer batches, evaluation of a masked
model on the arithmetic language, sample mode writing decoded text, the run loaded with
`diffjax.runs.load`; bad configs fail before a workdir is written."""
import os

import jax
import numpy as np
import pytest

import experiments
from diffjax import runs
from diffjax.errors import ConfigError
from diffjax.train.workdir import read_metrics


def test_arithmetic_tiny_trains_evaluates_and_writes_text(tmp_path):
  from configs.discrete import arithmetic  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  config = arithmetic.get_config("tiny")
  state = experiments.run(config, workdir)
  assert int(state.step) == 20
  record = read_metrics(workdir)[-1]
  assert record["nfe"] == 9  # First-hitting: one call per token of "ab+cd=efg".
  for key in ("fraction_correct", "prompt_accuracy_cfg0", "prompt_accuracy_cfg1"):
    assert 0.0 <= record[key] <= 1.0
  # A model's NELBO is never below the true NLL (2 ln 100 nats) beyond Monte Carlo error.
  assert record["nelbo_minus_true_nll"] > -4 * record["nelbo_standard_error"]
  assert 0 < record["validation_bits_per_token"] < 10
  arrays = experiments.run(config, workdir, mode="sample")
  assert arrays["tokens"].shape == (16, 9) and arrays["text"].shape == (16,)
  assert all(len(line) == 9 for line in arrays["text"])
  assert os.path.exists(os.path.join(workdir, "samples", "samples_0000020.png"))
  with np.load(os.path.join(workdir, "samples", "samples_0000020.npz")) as saved:
    assert saved["text"][0] == arrays["text"][0]
  # The run loads as a library object that samples token sequences.
  run = runs.load(workdir)
  assert run.spec.vocab_size == 12 and run.path.mask_id == 12
  tokens = np.asarray(run.sample(jax.random.PRNGKey(0), 4))
  assert tokens.shape == (4, 9) and tokens.dtype == np.int32
  assert tokens.min() >= 0 and tokens.max() < 12  # Every position filled with a real token.


@pytest.mark.parametrize("overrides, message", [
    ({"path": {"schedule": "zigzag"}}, "path.schedule='zigzag' is not one of the valid"),
    ({"path": {"mask_id": 3}}, "mask_id 3 collides with a real token"),
    ({"eval": {"prompt": "12+34=0567"}}, "longer than the sequence length 9"),
    ({"objective": {"estimator": "t_dse"}}, "Unknown masked-diffusion estimator 't_dse'"),
    ({"model": {"time_input": True},
      "sample": {"solver": "masked_ancestral", "num_steps": 10, "cache": True}},
     "needs a time-free network"),
    ({"sample": {"solver": "first_hitting", "top_p": 1.5}}, "top_p=1.5 is out of range"),
])
def test_bad_configs_fail_before_the_workdir_is_written(tmp_path, overrides, message):
  from configs.discrete import arithmetic  # pylint: disable=g-import-not-at-top
  config = arithmetic.get_config("tiny")
  for section, values in overrides.items():
    config[section].update(values)
  with pytest.raises(ConfigError, match=message):
    experiments.run(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_a_too_long_sequence_is_refused_by_the_model():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from diffjax.models import build_model  # pylint: disable=g-import-not-at-top
  model = build_model("token_transformer", (8,), vocab_size=12, hidden_dim=16, depth=1,
                      num_heads=2)
  with pytest.raises(ConfigError, match=r"\(B, N <= 8\) token ids; got shape \(1, 9\)"):
    model.apply(None, jnp.zeros((1, 9), jnp.int32), 0.0)


@pytest.mark.parametrize("module, arg, vocab", [
    ("chars", "tiny", 96), ("chars", "ar,tiny", 96), ("tfds_text", "lm1b,tiny", 256),
    ("arithmetic", "ancestral,tiny", 12), ("arithmetic", "labels,tiny", 12)])
def test_other_configs_build_their_tasks(module, arg, vocab):
  import importlib  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from experiments import text  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f"configs.discrete.{module}").get_config(arg)
  with tfds.testing.mock_data(num_examples=8):
    task = text.build_task(config)
  batch = next(task.data(0))["tokens"]
  length = 9 if module == "arithmetic" else config.data.sequence_length
  assert batch.shape == (config.train.batch_size, length)
  assert batch.dtype == np.int32 and batch.max() < vocab
