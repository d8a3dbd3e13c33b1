"""A limit order book and a simulator of its order flow (NumPy, event by event).

`OrderBook` holds resting volume at integer price ticks and applies orders, each
(type, offset, size):
  type 0 / 1  limit buy / sell at offset ticks behind the opposite best quote (buy at
              best ask - 1 - offset, sell at best bid + 1 + offset: 0 improves the
              spread when it is wider than a tick, else joins the best quote)
  type 2 / 3  market buy / sell of `size`, walking the book from the best quote
  type 4 / 5  cancel up to `size` at offset levels behind the own best quote (bid side /
              ask side; an empty level cancels at the nearest non-empty one behind it)
A side emptied by a market order is refilled with one lot two ticks behind the other
side's best, so the mid-price is always defined.

`simulate_order_flow` drives the book with a Hawkes / queue-reactive flow: market orders
arrive as a self-exciting Hawkes process (exponential kernel, "Spectra of some
self-exciting and mutually exciting point processes", Hawkes 1971; simulated by Ogata's
thinning) whose side persists (order splitting: the same side as the previous market
order with probability `side_persistence`); limit orders arrive at a Poisson rate on the
side whose best queue is thinner with higher probability (a queue-reactive choice in the
spirit of Huang, Lehalle & Rosenbaum 2015); cancellations at a Poisson rate on either side
in proportion to its resting volume. Sizes are discretised Pareto (heavy-tailed), limit
offsets geometric. Market clustering gives volatility clustering, large market orders
sweeping levels give heavy-tailed returns: the stylised facts TRADES reproduces.
"""
from typing import NamedTuple

import numpy as np

from diffjax.errors import ConfigError

NUM_TYPES = 6
LIMIT_BUY, LIMIT_SELL, MARKET_BUY, MARKET_SELL, CANCEL_BID, CANCEL_ASK = range(NUM_TYPES)
DEPTH_LEVELS = 5


class OrderBook:
  """Resting volume bid[p], ask[p] at ticks p = 0..num_ticks-1."""

  def __init__(self, num_ticks=2048, rng=None, initial_depth=5.0, initial_spread=2):
    self.bid = np.zeros(num_ticks, np.int64)
    self.ask = np.zeros(num_ticks, np.int64)
    rng = np.random.default_rng(0) if rng is None else rng
    centre = num_ticks // 2
    for k in range(10):
      self.bid[centre - initial_spread // 2 - k] = 1 + rng.poisson(initial_depth)
      self.ask[centre + (initial_spread + 1) // 2 + k] = 1 + rng.poisson(initial_depth)

  def best_bid(self):
    nonzero = np.flatnonzero(self.bid)
    return int(nonzero[-1]) if len(nonzero) else None

  def best_ask(self):
    nonzero = np.flatnonzero(self.ask)
    return int(nonzero[0]) if len(nonzero) else None

  def mid(self):
    return 0.5 * (self.best_bid() + self.best_ask())

  def spread(self):
    return self.best_ask() - self.best_bid()

  def depths(self, levels=DEPTH_LEVELS):
    """(2 levels,) volumes at the best `levels` occupied-or-not ticks of bid then ask."""
    bb, ba = self.best_bid(), self.best_ask()
    bids = self.bid[max(bb - levels + 1, 0):bb + 1][::-1]
    asks = self.ask[ba:ba + levels]
    return np.concatenate([np.pad(bids, (0, levels - len(bids))),
                           np.pad(asks, (0, levels - len(asks)))])

  def _refill(self):
    bb, ba = self.best_bid(), self.best_ask()
    if bb is None:
      self.bid[ba - 2] += 1
    if ba is None:
      self.ask[bb + 2] += 1

  def apply(self, kind, offset, size):
    """Applies one order (module docstring); returns the volume it traded or moved."""
    offset, size = max(int(offset), 0), max(int(size), 1)
    bb, ba = self.best_bid(), self.best_ask()
    last = len(self.bid) - 1
    if kind == LIMIT_BUY:
      self.bid[int(np.clip(ba - 1 - offset, 1, last))] += size
    elif kind == LIMIT_SELL:
      self.ask[int(np.clip(bb + 1 + offset, 0, last - 1))] += size
    elif kind in (MARKET_BUY, MARKET_SELL):
      side = self.ask if kind == MARKET_BUY else self.bid
      remaining = size
      levels = np.flatnonzero(side)
      for p in (levels if kind == MARKET_BUY else levels[::-1]):
        take = min(remaining, side[p])
        side[p] -= take
        remaining -= take
        if not remaining:
          break
      size -= remaining
    else:
      side, best = (self.bid, bb) if kind == CANCEL_BID else (self.ask, ba)
      step = -1 if kind == CANCEL_BID else 1
      levels = np.flatnonzero(side)
      target = best + step * offset
      behind = levels[levels <= target] if step < 0 else levels[levels >= target]
      p = (behind[-1] if step < 0 else behind[0]) if len(behind) else best
      size = min(size, int(side[p]))
      side[p] -= size
    self._refill()
    return size


class OrderStream(NamedTuple):
  """N events: times (N,) in seconds, kinds (N,) int, offsets (N,) int ticks, sizes (N,)
  int lots; mids (N + 1,) mid-price and spreads (N + 1,) best ask - best bid, in ticks,
  before the first and after each event; depths (N + 1, 2 * DEPTH_LEVELS) the volumes at
  the best ticks of each side at the same moments."""
  times: np.ndarray
  kinds: np.ndarray
  offsets: np.ndarray
  sizes: np.ndarray
  mids: np.ndarray
  spreads: np.ndarray
  depths: np.ndarray


def pareto_lots(rng, tail, cap=200):
  """A discretised Pareto(tail) lot size >= 1, capped."""
  return int(min(np.ceil(rng.uniform() ** (-1.0 / tail)), cap))


def record_stream(book, events):
  """Runs `events` (an iterable of (time, kind, offset, size)) through `book` and records
  the `OrderStream` (the sizes are what each order traded, placed or cancelled)."""
  rows, states = [], [book_state(book)]
  for time, kind, offset, size in events:
    done = book.apply(kind, offset, size)
    rows.append((time, kind, offset, done))
    states.append(book_state(book))
  return stream_from_records(rows, states)


def stream_from_records(rows, states):
  """The `OrderStream` of rows (time, kind, offset, size) and the N + 1 `book_state`s
  around them."""
  times, kinds, offsets, sizes = (np.asarray(c) for c in zip(*rows))
  mids, spreads, depths = (np.asarray(c) for c in zip(*states))
  return OrderStream(times.astype(np.float64), kinds.astype(np.int64),
                     offsets.astype(np.int64), sizes.astype(np.int64), mids,
                     spreads.astype(np.int64), depths.astype(np.int64))


def book_state(book):
  """(mid, spread, depths) of `book` now."""
  return book.mid(), book.spread(), book.depths()


def simulate_order_flow(seed, num_events, market_base=0.15, excitation=0.8, decay=1.2,
                        side_persistence=0.75, limit_rate=1.2, cancel_rate=0.9,
                        limit_tail=1.8, market_tail=1.4, offset_decay=0.45):
  """An `OrderStream` of `num_events` events of the Hawkes / queue-reactive flow (module
  docstring; excitation / decay < 1 is the market branching ratio)."""
  if not (isinstance(num_events, int) and num_events >= 1):
    raise ConfigError(f"num_events must be an integer >= 1; got {num_events!r}.")
  if not 0 <= excitation < decay:
    raise ConfigError(f"A stationary Hawkes process needs 0 <= excitation < decay; got "
                      f"{excitation} and {decay}.")
  rng = np.random.default_rng(seed)
  book = OrderBook(rng=rng)

  def flow():
    t, excess, last_side = 0.0, 0.0, int(rng.integers(2))
    for _ in range(num_events):
      while True:   # Ogata's thinning: the excess intensity only decays between events.
        bound = limit_rate + cancel_rate + market_base + excess
        wait = rng.exponential(1.0 / bound)
        t += wait
        excess *= np.exp(-decay * wait)
        rate = limit_rate + cancel_rate + market_base + excess
        if rng.uniform() * bound <= rate:
          break
      u = rng.uniform() * rate
      if u < market_base + excess:
        excess += excitation
        last_side = last_side if rng.uniform() < side_persistence else 1 - last_side
        yield t, MARKET_BUY + last_side, 0, pareto_lots(rng, market_tail)
      elif u < market_base + excess + limit_rate:
        depth = book.depths(1).astype(np.float64) + 1.0      # (best bid, best ask)
        buy = rng.uniform() < depth[1] / depth.sum()         # refill the thinner side
        offset = rng.geometric(offset_decay) - 1
        yield t, LIMIT_SELL - buy, offset, pareto_lots(rng, limit_tail)
      else:
        volume = np.array([book.bid.sum(), book.ask.sum()], np.float64)
        side = int(rng.uniform() < volume[1] / volume.sum())
        offset = rng.geometric(offset_decay) - 1
        yield t, CANCEL_BID + side, offset, pareto_lots(rng, limit_tail)

  return record_stream(book, flow())
