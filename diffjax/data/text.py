"""Token data: tokenizers, languages with an exact likelihood, a character corpus built
offline, tfds text, and resumable per-host batch streams of int32 token sequences.

Languages with an exact likelihood (to check samplers and NELBOs against the truth):
  EnumerableLanguage   any distribution over all V^L sequences (tiny V, L), with the exact
                       denoiser E[x1 | x_t] of a masking process computed by enumeration.
  ArithmeticLanguage   statements "ab+cd=efg": operands uniform in [0, 10^d), zero-padded,
                       and their sum; log p = -2 d ln 10 for a correct statement, -inf
                       otherwise, so samples can be checked and the NLL is known exactly.

Character corpus ("gnu_manuals"): the GNU manuals in Info format that Debian's Essential
packages coreutils, diffutils, findutils, grep, sed and gzip install under /usr/share/info
(about 2 MB of English technical prose; licence: GNU Free Documentation License 1.3 or
later, no invariant sections). It is read and cleaned on the user's machine, never shipped:
Info control lines are dropped, typographic quotes and dashes become ASCII, other
non-ASCII characters are removed. Fixed split: every tenth block of 8,192 characters of each
manual is validation (about 10%), so both splits hold prose, examples, indices and the
licence appendix alike.

tfds text ("lm1b", "tiny_shakespeare"): `tfds.data_source` records (never downloaded),
encoded and packed into one token array separated by newlines.

Token data for training (`TOKEN_DATA`, `load_token_data`): each dataset above as a
`TokenData` (a training-sequence sampler, validation sequences, the tokenizer, labels
where the data have them), built from the options of a config's data section; an option
the dataset does not read is refused, naming the options it does read.

Tokenizers: `CharTokenizer` (a fixed alphabet, default the 95 printable ASCII characters and
newline) and `ByteTokenizer` (UTF-8 bytes, 256 ids).
"""
import dataclasses
import functools
import gzip
import inspect
import itertools
import os
import string
from typing import Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.images import DatasetNotPreparedError, not_prepared_message
from diffjax.errors import ConfigError
from diffjax.registry import Registry

TEXT_DATASETS = Registry("text dataset")

# ----------------------------------------------------------------------------------------
# Tokenizers


class CharTokenizer:
  """Characters of a fixed alphabet <-> ids 0 .. len(alphabet) - 1."""

  def __init__(self, alphabet: str = string.printable[:95] + "\n", mask_symbol: str = "_"):
    if len(set(alphabet)) != len(alphabet):
      raise ConfigError("A tokenizer alphabet must not repeat characters.")
    self.alphabet, self.mask_symbol = alphabet, mask_symbol
    self._ids = {c: i for i, c in enumerate(alphabet)}

  @property
  def vocab_size(self) -> int:
    return len(self.alphabet)

  def encode(self, text: str) -> np.ndarray:
    unknown = sorted(set(text) - set(self._ids))
    if unknown:
      raise ConfigError(f"Characters {unknown[:10]} are not in the tokenizer's alphabet "
                        f"{self.alphabet!r}.")
    return np.fromiter((self._ids[c] for c in text), np.int32, len(text))

  def decode(self, ids) -> str:
    """Ids outside the alphabet (the mask) print as mask_symbol."""
    return "".join(self.alphabet[i] if 0 <= i < len(self.alphabet) else self.mask_symbol
                   for i in np.asarray(ids).tolist())


class ByteTokenizer:
  """UTF-8 bytes <-> ids 0 .. 255."""
  vocab_size = 256
  mask_symbol = "_"

  def encode(self, text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)

  def decode(self, ids) -> str:
    """Ids outside 0..255 (the mask) print as mask_symbol; bad UTF-8 as U+FFFD."""
    pieces, run = [], []
    for i in np.asarray(ids).tolist():
      if 0 <= i < 256:
        run.append(i)
      else:
        pieces += [bytes(run).decode("utf-8", "replace"), self.mask_symbol]
        run = []
    return "".join(pieces) + bytes(run).decode("utf-8", "replace")


TOKENIZERS = {"chars": CharTokenizer, "bytes": ByteTokenizer}


def build_tokenizer(name: str):
  if not isinstance(name, str) or name not in TOKENIZERS:
    raise ConfigError(f"Unknown tokenizer {name!r}; valid: {sorted(TOKENIZERS)}.")
  return TOKENIZERS[name]()


def check_tokens(tokens, vocab_size: int, what: str = "tokens"):
  """Refuses ids outside [0, vocab_size) (e.g. a mask id in the data); returns tokens."""
  tokens = np.asarray(tokens)
  bad = tokens[(tokens < 0) | (tokens >= vocab_size)]
  if bad.size:
    raise ConfigError(f"{what} hold id {int(bad[0])} outside the vocabulary [0, "
                      f"{vocab_size}) ({bad.size} such ids).")
  return tokens


def prompt_sequence(prompt_ids, length: int, mask_id: int) -> np.ndarray:
  """(length,) int32: the prompt followed by masks (free positions to fill)."""
  prompt_ids = np.asarray(prompt_ids, np.int32)
  if prompt_ids.shape[-1] > length:
    raise ConfigError(f"The prompt has {prompt_ids.shape[-1]} tokens, longer than the "
                      f"sequence length {length}.")
  out = np.full((length,), mask_id, np.int32)
  out[:prompt_ids.shape[-1]] = prompt_ids
  return out


# ----------------------------------------------------------------------------------------
# Languages with an exact likelihood


@dataclasses.dataclass(frozen=True)
class EnumerableLanguage:
  """A distribution over a list of sequences: log_probs (N,) of `support` (N, L) int32, by
  default all V^L sequences in lexicographic order."""
  vocab_size: int
  length: int
  log_probs: np.ndarray
  support: Optional[np.ndarray] = None

  @functools.cached_property
  def sequences(self) -> np.ndarray:
    if self.support is not None:
      return np.asarray(self.support, np.int32)
    return np.asarray(list(itertools.product(range(self.vocab_size), repeat=self.length)),
                      np.int32)

  def index(self, x) -> np.ndarray:
    """(B, L) sequences -> (B,) indices into `sequences` (full enumeration only)."""
    return np.asarray(x) @ (self.vocab_size ** np.arange(self.length)[::-1])

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    return self.sequences[rng.choice(len(self.sequences), n, p=np.exp(self.log_probs))]

  def denoiser_logits(self, path):
    """(x_t (B, L), t) -> (B, L, V) log E[x1 | x_t] under `path` (exact, by enumeration;
    depends on t only for a state-dependent schedule)."""
    seqs, log_p = jnp.asarray(self.sequences), jnp.asarray(self.log_probs, jnp.float32)
    one_hot = jax.nn.one_hot(seqs, self.vocab_size)

    def logits(xt, t):
      masked = xt[:, None, :] == path.mask_id  # (B, 1, L)
      compatible = jnp.all(masked | (xt[:, None, :] == seqs[None]), -1)
      weights = jnp.where(compatible, log_p[None], -jnp.inf)
      if path.state_dependent:  # P(still masked | x1) tilts the posterior
        hidden = 1.0 - path.alpha(jnp.broadcast_to(jnp.asarray(t, jnp.float32),
                                                   xt.shape[:1]))  # (B, V)
        log_hidden = jnp.log(jnp.maximum(hidden, 1e-30))[:, seqs]  # (B, N, L)
        weights = weights + jnp.sum(jnp.where(masked, log_hidden, 0.0), -1)
      mu = jnp.einsum("bn,nlv->blv", jax.nn.softmax(weights, -1), one_hot)
      return jnp.log(jnp.maximum(mu, 1e-30))

    return logits


def random_enumerable_language(vocab_size=3, length=4, *, seed=0, scale=2.0):
  """log p proportional to scale x standard normal draws: a correlated toy language."""
  rng = np.random.default_rng(seed)
  energies = scale * rng.standard_normal(vocab_size ** length)
  log_probs = energies - np.logaddexp.reduce(energies)
  return EnumerableLanguage(vocab_size, length, log_probs)


@dataclasses.dataclass(frozen=True)
class ArithmeticLanguage:
  """Statements "a+b=c" with d-digit operands (zero-padded) and a (d + 1)-digit sum.

  Vocabulary "0123456789+=" (12 tokens); length 3 d + 3 (9 for d = 2). The label of a
  statement (for class-conditional models) is 1 if the sum has d + 1 digits (a carry out of
  the top digit), else 0.
  """
  digits: int = 2
  tokenizer: CharTokenizer = dataclasses.field(
      default_factory=lambda: CharTokenizer("0123456789+="))

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  @property
  def length(self) -> int:
    return 3 * self.digits + 3

  @property
  def answer_slice(self) -> slice:
    return slice(2 * self.digits + 2, self.length)

  @property
  def nll(self) -> float:
    """The exact negative log-likelihood (nats) of every correct statement."""
    return 2 * self.digits * float(np.log(10.0))

  def encode(self, a, b) -> np.ndarray:
    d = self.digits
    texts = [f"{x:0{d}d}+{y:0{d}d}={x + y:0{d + 1}d}" for x, y in zip(a, b)]
    return np.stack([self.tokenizer.encode(s) for s in texts])

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    a, b = rng.integers(0, 10 ** self.digits, (2, n))
    return self.encode(a, b)

  def labels(self, x) -> np.ndarray:
    return (np.asarray(x)[:, self.answer_slice][:, 0] != 0).astype(np.int32)

  def _numbers(self, x, where: slice):
    digits = np.asarray(x)[:, where]
    ok = np.all(digits < 10, -1)
    values = np.sum(np.where(digits < 10, digits, 0) * 10 ** np.arange(digits.shape[1])[::-1],
                    -1)
    return values, ok

  def is_correct(self, x) -> np.ndarray:
    """(B, L) token statements -> (B,) bool: well formed and the sum is right."""
    x = np.asarray(x)
    d = self.digits
    a, ok_a = self._numbers(x, slice(0, d))
    b, ok_b = self._numbers(x, slice(d + 1, 2 * d + 1))
    c, ok_c = self._numbers(x, self.answer_slice)
    plus, equals = self.tokenizer.encode("+=")
    form = (x[:, d] == plus) & (x[:, 2 * d + 1] == equals)
    return form & ok_a & ok_b & ok_c & (a + b == c)

  def log_prob(self, x) -> np.ndarray:
    return np.where(self.is_correct(x), -self.nll, -np.inf)

  def prompts(self, x, mask_id: int):
    """The operands of statements x with the answer masked: (x_prompt, free (B, L) bool)."""
    x = np.array(x)
    free = np.zeros(x.shape, bool)
    free[:, self.answer_slice] = True
    return np.where(free, mask_id, x).astype(np.int32), free

  def decode(self, x) -> list:
    return [self.tokenizer.decode(row) for row in np.asarray(x)]

  def enumerable(self) -> EnumerableLanguage:
    """The language as an explicit list of its 10^(2d) equally likely statements."""
    a, b = np.divmod(np.arange(10 ** (2 * self.digits)), 10 ** self.digits)
    support = self.encode(a, b)
    return EnumerableLanguage(self.vocab_size, self.length,
                              np.full(len(support), -self.nll), support)


# ----------------------------------------------------------------------------------------
# The character corpus and tfds text

INFO_DIR = "/usr/share/info"
GNU_MANUALS = {  # manual: (Info files, the Debian package that installs them)
    "coreutils": (("coreutils.info.gz",), "coreutils"),
    "diffutils": (("diffutils.info.gz",), "diffutils"),
    "find": (("find.info-1.gz", "find.info-2.gz"), "findutils"),
    "grep": (("grep.info.gz",), "grep"),
    "sed": (("sed.info.gz",), "sed"),
    "gzip": (("gzip.info.gz",), "gzip"),
}
_BLOCK = 8192
_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "-", "\u2014": "--", "\u2026": "...", "\u00a9": "(C)",
                        "\u00a0": " ", "\t": "    "})


def clean_info_text(raw: str) -> str:
  """Info file -> plain ASCII prose: drops node separators, node headers and the tag
  table, maps typographic characters to ASCII and removes other non-ASCII characters."""
  raw = raw.split("\x1f\nTag Table:")[0]
  lines = [line for line in raw.split("\n")
           if not line.startswith("\x1f") and not line.startswith("File: ")]
  text = "\n".join(lines).translate(_ASCII)
  return "".join(c for c in text if c == "\n" or " " <= c <= "~")


@functools.lru_cache(maxsize=2)
def gnu_manuals_corpus(info_dir: str = INFO_DIR, validation_fraction: float = 0.1):
  """(train, validation) texts of the GNU manuals corpus (see the module docstring)."""
  train, validation, missing = [], [], []
  for files, package in GNU_MANUALS.values():
    paths = [os.path.join(info_dir, f) for f in files]
    if not all(os.path.exists(p) for p in paths):
      missing.append(package)
      continue
    text = clean_info_text("".join(gzip.open(p, "rt", encoding="utf-8", errors="replace")
                                   .read() for p in paths))
    # Every tenth block of 8,192 characters is validation: both splits then mix prose,
    # examples, indices and the licence appendix in the same proportions.
    blocks = [text[i:i + _BLOCK] for i in range(0, len(text), _BLOCK)]
    period = round(1.0 / validation_fraction)
    train.append("".join(b for i, b in enumerate(blocks) if i % period != period - 1))
    validation.append("".join(b for i, b in enumerate(blocks) if i % period == period - 1))
  if missing:
    raise DatasetNotPreparedError(
        f"The gnu_manuals corpus needs the Info manuals of the Debian packages {missing} in "
        f"{info_dir} (apt-get install {' '.join(missing)}; images that strip "
        "/usr/share/info need `apt-get install --reinstall` without that exclusion).")
  return "\n".join(train), "\n".join(validation)


@dataclasses.dataclass(frozen=True)
class TokenCorpus:
  """A tokenized text: train / validation token arrays (int32) and the tokenizer."""
  name: str
  train: np.ndarray
  validation: np.ndarray
  tokenizer: object

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size


@TEXT_DATASETS.register("gnu_manuals")
def gnu_manuals(tokenizer="chars", data_dir: Optional[str] = None,
                max_characters: int = 0) -> TokenCorpus:
  """The corpus from the Info manuals in data_dir (default /usr/share/info); the first
  max_characters of each split if > 0."""
  tok = build_tokenizer(tokenizer)
  train, validation = gnu_manuals_corpus(data_dir or INFO_DIR)
  if max_characters:
    train, validation = train[:max_characters], validation[:max_characters]
  return TokenCorpus("gnu_manuals", tok.encode(train), tok.encode(validation), tok)


def _tfds_texts(name, split, data_dir, feature, max_characters):
  # Imported here, not at the top: tensorflow-datasets takes about 0.7 s to import.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    records = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # tfds raises several types for a missing dataset.
    raise DatasetNotPreparedError(not_prepared_message(name, split, data_dir)) from e
  texts, total = [], 0
  for i in range(len(records)):
    text = records[i][feature]
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    texts.append(text)
    total += len(text) + 1
    if max_characters and total >= max_characters:
      break
  return "\n".join(texts)


def tfds_text_corpus(name: str, *, tokenizer="bytes", data_dir: Optional[str] = None,
                     feature="text", train_split="train", validation_split="test",
                     max_characters: int = 0) -> TokenCorpus:
  """A tfds text dataset packed into token arrays (the first max_characters of each split
  if > 0). Characters outside a char tokenizer's alphabet are dropped."""
  tok = build_tokenizer(tokenizer)
  data_dir = data_dir or None

  def encode(split):
    text = _tfds_texts(name, split, data_dir, feature, max_characters)
    if isinstance(tok, CharTokenizer):
      text = "".join(c for c in text if c in tok._ids)  # pylint: disable=protected-access
    return tok.encode(text)

  return TokenCorpus(name, encode(train_split), encode(validation_split), tok)


TEXT_DATASETS.register("lm1b", functools.partial(tfds_text_corpus, "lm1b"))
TEXT_DATASETS.register("tiny_shakespeare", functools.partial(
    tfds_text_corpus, "tiny_shakespeare", validation_split="validation"))


def load_text_corpus(name: str, **options) -> TokenCorpus:
  """The corpus registered as `name` (gnu_manuals, lm1b, tiny_shakespeare)."""
  return TEXT_DATASETS.get(name)(**options)


# ----------------------------------------------------------------------------------------
# Batch streams


@dataclasses.dataclass(frozen=True)
class TokenStream:
  """This process's batches of int32 token sequences, a pure function of the step (so a
  resumed run sees the same data) and of the process (hosts read disjoint rows).

  draw(rng, n) -> (n, L) int32 tokens of one global batch; batch(step) returns this
  process's rows {"tokens": (B_local, L)} (and {"label"} if `labels` is given).
  """
  draw: object
  global_batch_size: int
  vocab_size: int
  seed: int = 0
  labels: object = None
  process_index: int = 0
  process_count: int = 1

  def __post_init__(self):
    if self.global_batch_size % self.process_count:
      raise ConfigError(f"global_batch_size={self.global_batch_size} is not divisible by the "
                        f"number of processes ({self.process_count}).")
    check_tokens(self.batch(0)["tokens"], self.vocab_size, "Training batches")

  def batch(self, step: int):
    tokens = np.asarray(self.draw(np.random.default_rng((self.seed, 7, step)),
                                  self.global_batch_size), np.int32)
    local = self.global_batch_size // self.process_count
    rows = slice(self.process_index * local, (self.process_index + 1) * local)
    out = {"tokens": tokens[rows]}
    if self.labels is not None:
      out["label"] = np.asarray(self.labels(tokens), np.int32)[rows]
    return out

  def iterate(self, start_step: int = 0) -> Iterator[dict]:
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


def random_windows(tokens: np.ndarray, length: int):
  """draw(rng, n) -> n windows of `length` tokens at uniformly random offsets."""
  if len(tokens) < length:
    raise ConfigError(f"The corpus has {len(tokens)} tokens, fewer than the sequence length "
                      f"{length}.")

  def draw(rng, n):
    starts = rng.integers(0, len(tokens) - length + 1, n)
    return tokens[starts[:, None] + np.arange(length)]
  return draw


def validation_windows(tokens: np.ndarray, length: int, count: int) -> np.ndarray:
  """Up to `count` non-overlapping windows from the start of `tokens`: (n, length)."""
  _check_length(length)
  n = min(count, len(tokens) // length)
  if n == 0:
    raise ConfigError(f"The validation text has {len(tokens)} tokens, fewer than the "
                      f"sequence length {length}.")
  return tokens[:n * length].reshape(n, length)


def _check_length(length):
  if isinstance(length, bool) or not isinstance(length, int) or length < 1:
    raise ConfigError(f"data.sequence_length={length!r} must be an integer >= 1 for a text "
                      "corpus (the length of its windows).")


# ----------------------------------------------------------------------------------------
# Token data for training: one `TokenData` per dataset, built from a data section


@dataclasses.dataclass(frozen=True)
class TokenData:
  """Sequences to train and evaluate on.

  Attributes:
    name: the dataset's name.
    draw: draw(rng, n) -> (n, L) int32 training sequences (numpy Generator rng).
    validation: (N, L) int32 held-out sequences.
    tokenizer: encode(str) -> ids, decode(ids) -> str (the mask prints as `mask_symbol`).
    language: the `ArithmeticLanguage` the sequences come from (exact likelihood,
      prompts, carry labels), or None for a corpus.
  """
  name: str
  draw: Callable
  validation: np.ndarray
  tokenizer: object
  language: Optional[ArithmeticLanguage] = None

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  @property
  def length(self) -> int:
    return int(self.validation.shape[1])

  @property
  def num_classes(self) -> int:
    """2 (the carry label) for the arithmetic language, 0 (unlabelled) for a corpus."""
    return 0 if self.language is None else 2

  def labels(self, x) -> np.ndarray:
    """(B, L) sequences -> (B,) labels (labelled data only)."""
    return self.language.labels(x)

  def decode(self, x) -> list:
    """(B, L) ids -> B strings."""
    return [self.tokenizer.decode(row) for row in np.asarray(x)]


TOKEN_DATA = Registry("token dataset")


@TOKEN_DATA.register("arithmetic")
def arithmetic_data(*, digits: int = 1, sequence_length: int = 0, num_validation: int = 1000,
                    seed: int = 0) -> TokenData:
  """Statements of the `ArithmeticLanguage` with d-digit operands; sequence_length 0 (or
  3 d + 3) is the statement length, which the language fixes."""
  if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 6:
    raise ConfigError(f"data.digits={digits!r} must be an integer in [1, 6] (digits of each "
                      "operand).")
  language = ArithmeticLanguage(digits)
  if sequence_length not in (0, language.length):
    raise ConfigError(f"data.sequence_length={sequence_length!r} does not apply to the "
                      f"arithmetic language: its statements of {digits}-digit operands have "
                      f"3 * {digits} + 3 = {language.length} tokens (set data.digits; leave "
                      "data.sequence_length 0).")
  validation = language.sample(np.random.default_rng((seed, 99)), num_validation)
  return TokenData("arithmetic", language.sample, validation, language.tokenizer, language)


def corpus_data(corpus: TokenCorpus, sequence_length: int,
                num_validation: int = 1000) -> TokenData:
  """Random training windows of `sequence_length` tokens of `corpus` and up to
  num_validation non-overlapping validation windows."""
  _check_length(sequence_length)
  return TokenData(corpus.name, random_windows(corpus.train, sequence_length),
                   validation_windows(corpus.validation, sequence_length, num_validation),
                   corpus.tokenizer)


def _corpus_token_data(name, *, sequence_length: int = 128, tokenizer: str = "chars",
                       data_dir: str = "", max_characters: int = 0,
                       num_validation: int = 1000, seed: int = 0) -> TokenData:
  del seed  # Windows are drawn from the training step's own generator.
  if isinstance(max_characters, bool) or not isinstance(max_characters, int) or (
      max_characters < 0):
    raise ConfigError(f"data.max_characters={max_characters!r} must be an integer >= 0 "
                      "(0: the whole text).")
  _check_length(sequence_length)
  corpus = load_text_corpus(name, tokenizer=tokenizer, data_dir=data_dir,
                            max_characters=max_characters)
  return corpus_data(corpus, sequence_length, num_validation)


for _name in TEXT_DATASETS:
  TOKEN_DATA.register(_name, functools.partial(_corpus_token_data, _name))


def token_data_options(name: str):
  """The data-section options the dataset `name` reads."""
  params = inspect.signature(TOKEN_DATA.get(name)).parameters
  return tuple(p for p in params if p not in ("num_validation", "seed")
               and params[p].kind == inspect.Parameter.KEYWORD_ONLY)


def load_token_data(name: str, options, *, num_validation: int = 1000,
                    seed: int = 0) -> TokenData:
  """The `TokenData` of dataset `name` (`TOKEN_DATA`) from a data section's options (a
  mapping without `name`); an option the dataset does not read is refused."""
  readable = token_data_options(name)
  for key, value in options.items():
    if key not in readable:
      raise ConfigError(f"data.{key}={value!r} does not apply to data.name={name!r}, which "
                        f"reads: {', '.join(readable)}.")
  return TOKEN_DATA.get(name)(**options, num_validation=num_validation, seed=seed)

