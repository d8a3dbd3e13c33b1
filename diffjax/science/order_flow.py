"""Orders as vectors for a diffusion model, the market history it is conditioned on, and
the evaluation of simulated markets ("TRADES: Generating Realistic Market Simulations with
Diffusion Models", Berti et al. 2025, Sec. 4-5).

An order is ORDER_DIM = 9 numbers: its type as a +-1 code (6 entries, +1 at the type),
and the standardised log(1 + offset), log(size) and log(inter-arrival time) (`OrderScaler`,
fitted on the real stream). The condition of the next order is the last `history` orders
and the book before it (log(1 + volume) at the 5 best ticks of each side and the spread):
history * 9 + 11 numbers. Evaluation:
  predictive_score  train on synthetic, test on real: a ridge regression of the mid-price
                    change over the next `horizon` events on order-flow features of the last
                    `window` events, fitted on a stream and scored by MAE (ticks) on the real
                    test stream (TRADES's predictive score, their Table 1)
  stylised_facts    returns over fixed event intervals: excess kurtosis (heavy tails), the
                    autocorrelation of |r| (volatility clustering) and of r; order sizes
  no_change_mae     the same MAE of predicting no change (the reference)
  pooled_facts      stylised facts of several streams together
resample_orders is the baseline: the real orders drawn i.i.d. and replayed on a book.
"""
from typing import NamedTuple

import numpy as np

from diffjax.data.order_book import (DEPTH_LEVELS, MARKET_BUY, MARKET_SELL, NUM_TYPES,
                                     OrderBook, OrderStream, book_state, record_stream,
                                     stream_from_records)
from diffjax.errors import ConfigError

ORDER_DIM = NUM_TYPES + 3
BOOK_DIM = 2 * DEPTH_LEVELS + 1


def book_dim(history):
  """The length of the condition of one order."""
  return history * ORDER_DIM + BOOK_DIM


class OrderScaler(NamedTuple):
  """Means and stds (3,) of log(1 + offset), log(size), log(inter-arrival time)."""
  mean: np.ndarray
  std: np.ndarray

  @staticmethod
  def fit(stream):
    raw = _log_features(stream.offsets, stream.sizes, _waits(stream.times))
    return OrderScaler(raw.mean(0), raw.std(0) + 1e-6)

  def encode(self, kinds, offsets, sizes, waits):
    """(N, ORDER_DIM) vectors of N orders."""
    codes = 2.0 * np.eye(NUM_TYPES)[np.asarray(kinds)] - 1.0
    scaled = (_log_features(offsets, sizes, waits) - self.mean) / self.std
    return np.concatenate([codes, scaled], 1).astype(np.float32)

  def decode(self, vectors):
    """(kinds, offsets, sizes, waits) of (N, ORDER_DIM) vectors (rounded to valid orders:
    offsets >= 0 ticks, sizes >= 1 lot, market orders at offset 0)."""
    vectors = np.asarray(vectors, np.float64)
    kinds = np.argmax(vectors[:, :NUM_TYPES], 1)
    raw = vectors[:, NUM_TYPES:] * self.std + self.mean
    offsets = np.maximum(np.rint(np.expm1(raw[:, 0])), 0).astype(np.int64)
    offsets[(kinds == MARKET_BUY) | (kinds == MARKET_SELL)] = 0
    sizes = np.maximum(np.rint(np.exp(raw[:, 1])), 1).astype(np.int64)
    return kinds, offsets, sizes, np.exp(raw[:, 2])


def _waits(times):
  return np.diff(np.concatenate([[0.0], times]))


def _log_features(offsets, sizes, waits):
  return np.stack([np.log1p(offsets), np.log(np.maximum(sizes, 1)),
                   np.log(np.maximum(waits, 1e-4))], 1)


def book_features(spreads, depths):
  """(N, BOOK_DIM) features of book states: log(1 + depths) and the spread."""
  return np.concatenate([np.log1p(np.asarray(depths, np.float64)),
                         np.asarray(spreads, np.float64)[:, None]], 1).astype(np.float32)


def training_pairs(stream, scaler, history):
  """(orders (N - history, ORDER_DIM), conditions (N - history, book_dim(history))): each
  order after the first `history` with the orders before it and the book it met."""
  n = len(stream.kinds)
  if n <= history:
    raise ConfigError(f"The order stream has {n} events; the history of {history} needs "
                      "more.")
  vectors = scaler.encode(stream.kinds, stream.offsets, stream.sizes, _waits(stream.times))
  books = book_features(stream.spreads, stream.depths)
  idx = np.arange(history, n)
  past = np.stack([vectors[i - history:i].reshape(-1) for i in idx])
  return vectors[idx], np.concatenate([past, books[idx]], 1)


def simulate_market(next_orders, seed_stream, scaler, history, num_events, num_paths, rng):
  """Autoregressive market simulation: `num_paths` books replay the first `history` orders
  of `seed_stream`, then each step next_orders(conditions (P, book_dim)) -> (P, ORDER_DIM)
  gives every path's next order, which its book executes. Returns the P `OrderStream`s of
  the generated events (from the book after the replayed history)."""
  seed = [(seed_stream.times[i], seed_stream.kinds[i], seed_stream.offsets[i],
           seed_stream.sizes[i]) for i in range(history)]
  books, pasts, clocks = [], [], []
  for _ in range(num_paths):
    book = OrderBook(rng=np.random.default_rng(int(rng.integers(2 ** 31))))
    replayed = record_stream(book, seed)
    books.append(book)
    pasts.append(scaler.encode(replayed.kinds, replayed.offsets, replayed.sizes,
                               _waits(replayed.times)))
    clocks.append(float(replayed.times[-1]))
  rows = [[] for _ in range(num_paths)]
  states = [[book_state(b)] for b in books]
  for _ in range(num_events):
    now = [s[-1] for s in states]
    conditions = np.concatenate([np.stack([p.reshape(-1) for p in pasts]),
                                 book_features([s[1] for s in now], [s[2] for s in now])], 1)
    kinds, offsets, sizes, waits = scaler.decode(next_orders(conditions))
    for p in range(num_paths):
      clocks[p] += float(waits[p])
      done = books[p].apply(kinds[p], offsets[p], sizes[p])
      rows[p].append((clocks[p], int(kinds[p]), int(offsets[p]), done))
      states[p].append(book_state(books[p]))
      order = scaler.encode(kinds[p:p + 1], offsets[p:p + 1], [done], waits[p:p + 1])
      pasts[p] = np.concatenate([pasts[p][1:], order])
  return [stream_from_records(r, s) for r, s in zip(rows, states)]


def resample_orders(stream, num_events, rng):
  """The resampling baseline: `num_events` orders drawn i.i.d. from `stream` (with their
  inter-arrival times) replayed on a fresh book."""
  waits = _waits(stream.times)
  picks = rng.integers(len(stream.kinds), size=num_events)
  clock = np.cumsum(waits[picks])
  events = [(clock[j], stream.kinds[i], stream.offsets[i], stream.sizes[i])
            for j, i in enumerate(picks)]
  return record_stream(OrderBook(rng=rng), events)


def flow_features(stream, window):
  """(N - window + 1, 5) features at each event index i >= window of the mids: signed
  market volume and signed market count over the last `window` events, the best-level
  volume imbalance, the spread and the mid change over the window."""
  kinds, sizes = stream.kinds, stream.sizes.astype(np.float64)
  sign = np.where(kinds == MARKET_BUY, 1.0, np.where(kinds == MARKET_SELL, -1.0, 0.0))
  volume = np.concatenate([[0.0], np.cumsum(sign * sizes)])
  count = np.concatenate([[0.0], np.cumsum(sign)])
  idx = np.arange(window, len(kinds) + 1)
  bid, ask = stream.depths[idx, 0].astype(np.float64), stream.depths[idx, DEPTH_LEVELS]
  return np.stack([volume[idx] - volume[idx - window], count[idx] - count[idx - window],
                   (bid - ask) / (bid + ask + 1.0), stream.spreads[idx],
                   stream.mids[idx] - stream.mids[idx - window]], 1)


def _targets(stream, window, horizon):
  feats = flow_features(stream, window)
  idx = np.arange(window, len(stream.kinds) + 1)
  keep = idx + horizon < len(stream.mids)
  return feats[keep], stream.mids[idx[keep] + horizon] - stream.mids[idx[keep]]


def predictive_score(train_streams, test_stream, window=20, horizon=20, ridge=1e-3):
  """MAE (ticks) on `test_stream` of the ridge regression of the next-`horizon` mid change
  on `flow_features`, fitted on the streams `train_streams` (one or a list)."""
  streams = [train_streams] if isinstance(train_streams, OrderStream) else train_streams
  pairs = [_targets(s, window, horizon) for s in streams]
  x = np.concatenate([p[0] for p in pairs])
  y = np.concatenate([p[1] for p in pairs])
  mean, std = x.mean(0), x.std(0) + 1e-9
  design = lambda f: np.concatenate([(f - mean) / std, np.ones((len(f), 1))], 1)
  d = design(x)
  weights = np.linalg.solve(d.T @ d + ridge * len(d) * np.eye(d.shape[1]), d.T @ y)
  x_test, y_test = _targets(test_stream, window, horizon)
  return float(np.mean(np.abs(design(x_test) @ weights - y_test)))


def no_change_mae(test_stream, window=20, horizon=20):
  """MAE (ticks) of predicting no mid change over the next `horizon` events, on the
  events `predictive_score` scores: the reference a useful forecaster beats."""
  return float(np.mean(np.abs(_targets(test_stream, window, horizon)[1])))


def interval_returns(stream, interval):
  """Mid-price changes (ticks) over consecutive blocks of `interval` events."""
  return np.diff(stream.mids[::interval])


def autocorrelation(x, lags):
  """(len(lags),) sample autocorrelations of x."""
  x = np.asarray(x, np.float64) - np.mean(x)
  var = np.mean(x ** 2) + 1e-12
  return np.array([np.mean(x[:-k] * x[k:]) / var for k in lags])


def stylised_facts(stream, interval=20, lags=tuple(range(1, 21))):
  """{"excess_kurtosis", "abs_return_acf" (lags,), "return_acf" (lags,), "returns",
  "sizes" (placed limit and traded market sizes)} of one stream."""
  r = interval_returns(stream, interval)
  centred = r - r.mean()
  kurtosis = np.mean(centred ** 4) / (np.mean(centred ** 2) ** 2 + 1e-12) - 3.0
  return {"excess_kurtosis": float(kurtosis),
          "abs_return_acf": autocorrelation(np.abs(r), lags),
          "return_acf": autocorrelation(r, lags), "returns": r,
          "sizes": stream.sizes[stream.kinds < 4]}


def pooled_facts(facts):
  """One `stylised_facts` dict of several streams' (a list): the kurtosis and the
  autocorrelations averaged over the streams, their returns and sizes concatenated."""
  pooled = {key: np.mean([f[key] for f in facts], 0)
            for key in ("excess_kurtosis", "abs_return_acf", "return_acf")}
  pooled["excess_kurtosis"] = float(pooled["excess_kurtosis"])
  for key in ("returns", "sizes"):
    pooled[key] = np.concatenate([f[key] for f in facts])
  return pooled
