"""Text data: tokenizers, the arithmetic language's exact likelihood, the GNU manuals corpus
built offline, tfds text under `tfds.testing.mock_data`, resumable per-host token streams and
the errors for bad tokens and prompts."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from diffjax.data import text
from diffjax.errors import ConfigError
from diffjax.paths.masked import masking_path


def test_tokenizers_round_trip_and_show_masks():
  chars = text.CharTokenizer()
  assert chars.vocab_size == 96
  line = "Copy (C) 2022, `ls -l`\n"
  assert chars.decode(chars.encode(line)) == line
  assert chars.decode([0, 96, 1]) == "0_1"
  with pytest.raises(ConfigError, match="not in the tokenizer's alphabet"):
    chars.encode("caf\u00e9")
  raw = text.ByteTokenizer()
  assert raw.decode(raw.encode("caf\u00e9")) == "caf\u00e9"
  assert raw.decode([104, 256, 105]) == "h_i"


def test_arithmetic_language_is_verifiable():
  language = text.ArithmeticLanguage(2)
  x = language.sample(np.random.default_rng(0), 1000)
  assert x.shape == (1000, 9) and language.is_correct(x).all()
  assert language.nll == pytest.approx(2 * np.log(100))
  wrong = x.copy()
  wrong[:, -1] = (wrong[:, -1] + 1) % 10
  assert not language.is_correct(wrong).any()
  assert np.all(np.isinf(language.log_prob(wrong)))
  # Labels mark a carry out of the top digit: about half the statements (4950 of 10^4).
  assert 0.45 < language.labels(x).mean() < 0.55
  prompt, free = language.prompts(x[:2], mask_id=12)
  assert free.sum() == 6 and np.all(prompt[free] == 12) and np.all(prompt[~free] == x[:2][~free])
  assert language.decode(x[:1])[0][2] == "+"


def test_gnu_manuals_corpus_is_built_offline_with_a_fixed_split():
  corpus = text.load_text_corpus("gnu_manuals")
  assert corpus.vocab_size == 96
  assert len(corpus.train) > 1_000_000 and len(corpus.validation) > 100_000
  sample = corpus.tokenizer.decode(corpus.validation[:2000])
  assert "File: " not in sample and "\x1f" not in sample
  assert np.array_equal(corpus.train, text.load_text_corpus("gnu_manuals").train)


def test_a_missing_corpus_says_which_package_installs_it(tmp_path):
  with pytest.raises(text.DatasetNotPreparedError, match="apt-get install coreutils"):
    text.gnu_manuals_corpus(str(tmp_path))


def test_tfds_text_is_read_through_data_source():
  with tfds.testing.mock_data(num_examples=6):
    corpus = text.load_text_corpus("lm1b", tokenizer="bytes")
  assert corpus.vocab_size == 256 and len(corpus.train) > 0 and len(corpus.validation) > 0
  assert corpus.train.min() >= 0 and corpus.train.max() < 256


def test_token_streams_are_pure_functions_of_the_step_and_split_over_hosts():
  draw = text.ArithmeticLanguage(1).sample
  whole = text.TokenStream(draw, 8, 12, seed=3)
  halves = [text.TokenStream(draw, 8, 12, seed=3, process_index=i, process_count=2)
            for i in range(2)]
  np.testing.assert_array_equal(whole.batch(5)["tokens"],
                                np.concatenate([h.batch(5)["tokens"] for h in halves]))
  resumed = next(whole.iterate(5))
  np.testing.assert_array_equal(resumed["tokens"], whole.batch(5)["tokens"])
  assert not np.array_equal(whole.batch(5)["tokens"], whole.batch(6)["tokens"])


@pytest.mark.parametrize("build, message", [
    (lambda: text.TokenStream(lambda rng, n: np.full((n, 4), 12), 8, 12),
     "hold id 12 outside the vocabulary"),
    (lambda: text.prompt_sequence(np.arange(10), 8, 12), "longer than the sequence"),
    (lambda: masking_path("linear", vocab_size=12, mask_id=5), "mask_id 5 collides"),
    (lambda: masking_path("loglinear", vocab_size=12), "Unknown masking schedule 'loglinear'"),
    (lambda: text.random_windows(np.arange(5), 8), "fewer than the sequence length"),
])
def test_bad_input_is_refused_naming_the_value(build, message):
  with pytest.raises(ConfigError, match=message):
    build()
