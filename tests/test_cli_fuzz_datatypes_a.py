"""Bad files given to the SynthER and D2NWG families on the command line: a replay buffer
with a non-finite entry, a terminal flag outside {0, 1}, the wrong observation width or a
partial episode; a weight zoo mixing architectures, holding a NaN, of other layer sizes
than the config's or with a task index the config lacks. Each is one line, exit 2, and
no workdir."""
import numpy as np
import pytest

from diffjax.data import pendulum
from diffjax.weights.layout import layout_of_sizes
from diffjax.weights.zoo import Zoo, save_zoo
from tests.test_cli_fuzz import _assert_refused, _run

SYNTHER = "--config=configs/datatypes/synther.py:tiny"
D2NWG = "--config=configs/datatypes/d2nwg.py:tiny"
TINY_SIZES = (8, 4, 3)   # configs/datatypes/d2nwg.py:tiny: 8 features, hidden (4,), 3 classes.


def _buffer(episodes=2):
  """A well-formed buffer of whole Pendulum episodes (values need not obey the dynamics)."""
  n = episodes * pendulum.EPISODE_LENGTH
  rng = np.random.default_rng(0)
  observations = rng.normal(size=(n, pendulum.OBSERVATION_DIM)).astype(np.float32)
  return {"observations": observations,
          "actions": rng.uniform(-2, 2, (n, pendulum.ACTION_DIM)).astype(np.float32),
          "rewards": -rng.uniform(0, 16, n).astype(np.float32),
          "next_observations": np.roll(observations, -1, 0),
          "terminals": np.zeros(n, np.float32)}


def _nan_in_next_observations(b):
  b["next_observations"][7, 1] = np.nan


def _terminal_of_two(b):
  b["terminals"][5] = 2.0


def _four_wide_observations(b):
  b["observations"] = np.concatenate([b["observations"], b["observations"][:, :1]], 1)
  b["next_observations"] = np.concatenate([b["next_observations"],
                                           b["next_observations"][:, :1]], 1)


def _partial_episode(b):
  for key in b:
    b[key] = b[key][:-50]


def _zoo_arrays(path, sizes=TINY_SIZES, tasks=(0, 1, 1)):
  layout = layout_of_sizes(sizes)
  vectors = np.random.default_rng(1).normal(size=(len(tasks), layout.size))
  save_zoo(str(path), Zoo(vectors.astype(np.float32), np.asarray(tasks), layout))
  with np.load(path) as data:
    return dict(data)


def _mixed(arrays):
  arrays["net2.w0"], arrays["net2.b0"] = np.zeros((8, 6)), np.zeros(6)
  arrays["net2.w1"] = np.zeros((6, 3))


def _nan_weight(arrays):
  arrays["net1.w1"][2, 0] = np.nan


def _other_sizes(arrays):
  for j in range(3):
    arrays[f"net{j}.w0"], arrays[f"net{j}.b0"] = np.zeros((8, 5)), np.zeros(5)
    arrays[f"net{j}.w1"] = np.zeros((5, 3))


def _unknown_task(arrays):
  arrays["tasks"] = np.array([0, 1, 2])   # :tiny has 2 tasks.


def _writer(make, config, key):
  """A case's file: `make(path)`'s well-formed arrays, broken, given as config key `key`."""
  def write(break_it, path):
    arrays = make(path)
    break_it(arrays)
    np.savez(path, **arrays)
    return [config, f"--config.{key}={path}"]
  return write


_buffer_file = _writer(lambda path: _buffer(), SYNTHER, "data.buffer")
_zoo_file = _writer(_zoo_arrays, D2NWG, "data.zoo")


CASES = [
    (_nan_in_next_observations, _buffer_file,
     "next_observations has a non-finite value (nan) in row 7"),
    (_terminal_of_two, _buffer_file, "terminals must be 0 or 1"),
    (_four_wide_observations, _buffer_file,
     "observations of width 4 and actions of width 1; the Pendulum evaluation needs 3 and 1"),
    (_partial_episode, _buffer_file, "has 350 rows; whole episodes of 200 rows are expected"),
    (_mixed, _zoo_file,
     "mixes architectures: network 2 has layer sizes (8, 6, 3), network 0 (8, 4, 3)"),
    (_nan_weight, _zoo_file, "holds non-finite weights"),
    (_other_sizes, _zoo_file,
     "holds networks of layer sizes (8, 5, 3); the config's tasks need (8, 4, 3)"),
    (_unknown_task, _zoo_file, "has task indices 0..2; data.num_tasks=2 allows 0..1"),
]


@pytest.mark.parametrize("break_it, kind, text", CASES,
                         ids=[c[0].__name__.strip("_") for c in CASES])
def test_bad_file_is_refused_before_the_workdir(tmp_path, capfd, break_it, kind, text):
  workdir = tmp_path / "run"
  flags = kind(break_it, tmp_path / "data.npz")
  code, output = _run([*flags, f"--workdir={workdir}"], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
