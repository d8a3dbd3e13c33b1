"""Players of a task (`diffjax.train.Player`): their checks, the parameters each trains,
and their optimizer states.

A player's optimizer sees only the parameters it trains: `own(mask, params)` is the
parameters' tree with every leaf the player does not train replaced by None (an empty
subtree to JAX, optax and orbax), so Adam's moments exist once per trained parameter, and
gradient clipping and weight decay see the player's parameters alone.
"""
from typing import Any, Mapping, Sequence

import jax
import optax

from diffjax.errors import ConfigError
from diffjax.train.phases import trainable_mask
from diffjax.train.task import Player


def check_players(players: Sequence[Player]):
  """ConfigError naming the first malformed player; returns the players as a tuple."""
  players = tuple(players)
  names = []
  for i, player in enumerate(players):
    if not isinstance(player, Player):
      raise ConfigError(f"task.players[{i}] is a {type(player).__name__}; players must be "
                        "diffjax.train.Player objects.")
    if not isinstance(player.name, str) or not player.name or "/" in player.name:
      raise ConfigError(f"task.players[{i}].name={player.name!r} must be a non-empty string "
                        "without '/'.")
    if player.name in names:
      raise ConfigError(f"task.players: two players are named {player.name!r}; names must "
                        "be unique (they key the optimizer states).")
    names.append(player.name)
    who = f"Player {player.name!r}"
    if not callable(player.loss):
      raise ConfigError(f"{who}: loss={player.loss!r} must be a function.")
    if player.trainable is not None and not callable(player.trainable):
      raise ConfigError(f"{who}: trainable={player.trainable!r} must be a function or None.")
    optimizer = player.optimizer
    if not (optimizer is None or isinstance(optimizer, (str, optax.GradientTransformation))):
      raise ConfigError(f"{who}: optimizer={optimizer!r} must be an optax "
                        "GradientTransformation, the name of a config section of optimizer "
                        "keys (e.g. 'optim_fake'), or None (config.optim).")
  return players


def own(mask, tree):
  """The leaves of `tree` that `mask` (a same-structure tree of Python bools) marks True;
  the others None."""
  return jax.tree.map(lambda m, x: x if m else None, mask, tree)


def merge(mask, tree, owned):
  """`tree` with the leaves `mask` marks True taken from `owned` (as `own` gave them)."""
  leaves = iter(jax.tree.leaves(owned))
  return jax.tree.map(lambda m, x: next(leaves) if m else x, mask, tree)


def union_mask(players: Sequence[Player], params):
  """True where any of `players` trains a parameter."""
  masks = [trainable_mask(p, params) for p in players]
  return jax.tree.map(lambda *ms: any(ms), *masks)


def with_optimizers(players: Sequence[Player], optimizers: Mapping[str, Any]):
  """The players with their optimizers replaced by optimizers[name] (transformations)."""
  return tuple(Player(p.name, p.loss, optimizers[p.name], p.trainable) for p in players)


def init_optimizer_state(optimizer, params):
  """optimizer.init(params) for one optimizer; for a sequence of players (each with a
  GradientTransformation), {name: its optimizer's state over the parameters it trains}."""
  if isinstance(optimizer, optax.GradientTransformation):
    return optimizer.init(params)
  return {p.name: p.optimizer.init(own(trainable_mask(p, params), params))
          for p in optimizer}
