"""Masked discrete diffusion: training-step overhead, sampler cost at equal quality, and the
float32 truncation of categorical sampling.

  python -m benchmarks.discrete [--quick]

Figures:
  mdlm_step_over_bare_transformer: time of one masked-diffusion training step (time draw,
    masking, NELBO weighting, forward and backward) over a bare forward + backward of the
    same token transformer (cross-entropy on every position) on the same batch; medians of
    per-round ratios over interleaved rounds, each round a lax.scan of steps (expected <= 1.1).
  Sampling table: network calls and wall time of first-hitting, 1000-step ancestral and cached
    1000-step ancestral sampling with the character-model-sized transformer (random weights:
    the cost does not depend on them), at batch 1 (and 16 in the full run): the cache only
    skips a call when no sequence of the batch changed; quality of the same samplers fed the
    exact denoiser of the one-digit arithmetic language (100 statements, enumerated): the
    fraction of correct statements (first-hitting is exact; ancestral steps that reveal two
    dependent tokens at once can err).
  float32_gumbel_rate_over_true: draws of a 1e-7 token (against one of 1 - 1e-7) by float32
    Gumbel-max over the true count, and inverse_cdf_rate_over_true for the default sampler;
    2^30 draws (107 expected) in the full run, 2^26 (6.7 expected: not significant) quick.
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from diffjax.categorical import sample_categorical
from diffjax.core import Fields
from diffjax.data.text import ArithmeticLanguage
from diffjax.models import build_model
from diffjax.objectives.masked import masked_diffusion, token_cross_entropy
from diffjax.paths.masked import masking_path
from diffjax.solvers.discrete import sample_tokens
from diffjax.train import create_train_state, make_train_step, scan_steps

VOCAB, LENGTH = 96, 64
MODEL = dict(hidden_dim=128, depth=3, num_heads=4, positions="learned", time_input=False)


def _timed(fn, *args):
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def training_overhead(rounds, steps, batch=32):
  path = masking_path("linear", vocab_size=VOCAB)
  model = build_model("token_transformer", (LENGTH,), vocab_size=VOCAB, **MODEL)
  params = model.init(jax.random.PRNGKey(0))
  objective = masked_diffusion(path)
  tokens = jax.random.randint(jax.random.PRNGKey(1), (batch, LENGTH), 0, VOCAB)

  def masked_loss(p, key, shard, step, batch):
    del shard, step, batch
    return objective.loss(model.apply, p, key, None, tokens)

  def bare_loss(p, key, shard, step, batch):
    del key, shard, step, batch
    return jnp.mean(token_cross_entropy(model.apply(p, tokens, 0.0), tokens)), {}

  # A tiny SGD step (the library's train step, no EMA) keeps each iteration dependent on
  # the last; both sides pay the same update.
  optimizer = optax.sgd(1e-6)
  state = create_train_state(lambda key: params, optimizer, jax.random.PRNGKey(2))

  def scanned(loss):
    step = make_train_step(loss, optimizer)
    return jax.jit(lambda state: scan_steps(step, state, steps)[0])

  masked_run, bare_run = scanned(masked_loss), scanned(bare_loss)
  _timed(masked_run, state), _timed(bare_run, state)  # Compile.
  ratios, times = [], []
  for r in range(rounds):
    keyed = state.replace(key=jax.random.PRNGKey(10 + r))
    t_bare, t_masked = _timed(bare_run, keyed), _timed(masked_run, keyed)
    ratios.append(t_masked / t_bare)
    times.append((t_masked / steps, t_bare / steps))
  return float(np.median(ratios)), np.median(np.array(times), 0)


def sampling_cost(batch, steps, repeats):
  """{sampler: (network calls, seconds)} with the character-sized transformer."""
  path = masking_path("linear", vocab_size=VOCAB)
  model = build_model("token_transformer", (LENGTH,), vocab_size=VOCAB, **MODEL)
  params = model.init(jax.random.PRNGKey(0))
  fields = Fields.of(logits=lambda x, t: model.apply(params, x, t))
  x0 = path.source((batch, LENGTH))
  rows = {}
  for name, options in (("first_hitting", {}),
                        ("ancestral", {"num_steps": steps}),
                        ("ancestral_cached", {"num_steps": steps, "cache": True})):
    sampler = "masked_ancestral" if name.startswith("ancestral") else name
    run = jax.jit(lambda key: sample_tokens(sampler, fields, path, x0, key, **options)[::2])
    jax.block_until_ready(run(jax.random.PRNGKey(0)))
    calls, seconds = [], []
    for r in range(repeats):
      start = time.perf_counter()
      x, nfe = jax.block_until_ready(run(jax.random.PRNGKey(r + 1)))
      seconds.append(time.perf_counter() - start)
      assert not np.any(np.asarray(x) == path.mask_id)
      calls.append(int(nfe))
    rows[name] = (float(np.mean(calls)), float(np.median(seconds)))
  return rows


def sampling_quality(steps, n):
  """Fraction of correct statements with the exact denoiser of the arithmetic language."""
  language = ArithmeticLanguage(1)
  path = masking_path("linear", vocab_size=language.vocab_size)
  fields = Fields.of(logits=language.enumerable().denoiser_logits(path))
  x0 = path.source((n, language.length))
  out = {}
  for name, options in (("first_hitting", {}), ("ancestral", {"num_steps": steps}),
                        ("ancestral_cached", {"num_steps": steps, "cache": True})):
    sampler = "masked_ancestral" if name.startswith("ancestral") else name
    x = jax.jit(lambda key: sample_tokens(sampler, fields, path, x0, key, **options).x)(
        jax.random.PRNGKey(0))
    out[name] = float(language.is_correct(np.asarray(x)).mean())
  return out


def truncation(total_draws, chunk=2 ** 24):
  logits = jnp.log(jnp.array([1 - 1e-7, 1e-7], jnp.float32))
  counts = {}
  for method in ("gumbel_float32", "inverse_cdf"):
    draw = jax.jit(lambda key: jnp.sum(sample_categorical(key, logits, method=method,
                                                          shape=(chunk,))))
    counts[method] = sum(int(draw(jax.random.PRNGKey(i)))
                         for i in range(total_draws // chunk))
  return counts


def main(argv=None):
  args = common.parse_args(__doc__.splitlines()[0], argv)
  quick = args.quick
  ratio, (t_masked, t_bare) = training_overhead(rounds=5 if quick else 20,
                                                steps=5 if quick else 20)
  steps = 1000
  batches = (1,) if quick else (1, 16)
  cost = {b: sampling_cost(b, steps, repeats=1 if quick else 2) for b in batches}
  quality = sampling_quality(steps, 500 if quick else 4000)
  total = 2 ** 26 if quick else 2 ** 30
  counts = truncation(total)
  expected = total * 1e-7
  figures = {
      "mdlm_step_over_bare_transformer": ratio,
      "float32_gumbel_rate_over_true": counts["gumbel_float32"] / expected,
      "inverse_cdf_rate_over_true": counts["inverse_cdf"] / expected,
  }
  for b in batches:
    for name, (calls, seconds) in cost[b].items():
      figures[f"{name}_calls_batch{b}"] = calls
      figures[f"{name}_seconds_batch{b}"] = seconds
  rows = [[name, b, cost[b][name][0], cost[b][name][1], quality[name]]
          for b in batches for name in cost[b]]
  markdown = "\n\n".join([
      f"Training step, token transformer (d=128, depth 3, L={LENGTH}, V={VOCAB}, batch 32): "
      f"masked diffusion {1e3 * t_masked:.1f} ms, bare forward+backward {1e3 * t_bare:.1f} ms;"
      f" mdlm_step_over_bare_transformer = **{ratio:.3f}** (median of per-round ratios).",
      f"Sampling, {steps}-step ancestral vs first-hitting (L = {LENGTH}); quality: fraction "
      "of correct statements with the exact denoiser of the one-digit arithmetic language:",
      common.markdown_table(["sampler", "batch", "network calls", "seconds",
                             "fraction correct (exact denoiser)"], rows),
      f"A token of probability 1e-7 against one of 1 - 1e-7, {total} draws (expected "
      f"{expected:.1f}): float32 Gumbel-max drew it {counts['gumbel_float32']} times "
      f"({figures['float32_gumbel_rate_over_true']:.2f} of its rate), the default inverse-CDF "
      f"sampler {counts['inverse_cdf']} times "
      f"({figures['inverse_cdf_rate_over_true']:.2f}).",
  ])
  details = {"sampling_cost": cost, "sampling_quality": quality, "truncation_counts": counts,
             "truncation_draws": total, "ms_per_step": [1e3 * t_masked, 1e3 * t_bare]}
  common.write_results("discrete_quick" if quick else "discrete", figures, details, markdown,
                       quick, "python -m benchmarks.discrete" + (" --quick" if quick else ""))


if __name__ == "__main__":
  main(sys.argv[1:])
