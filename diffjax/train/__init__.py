"""The training engine: the train step, `fit` for notebooks, and the sharded multi-step
train call with checkpoints, logs and resumption (`train`)."""
from diffjax.train.checkpoint import CheckpointError
from diffjax.train.checkpoint import Checkpointer
from diffjax.train.defaults import engine_config
from diffjax.train.fit import fit
from diffjax.train.logs import configure_logging
from diffjax.train.loop import NonFiniteLossError
from diffjax.train.loop import build_train_call
from diffjax.train.loop import evaluate
from diffjax.train.loop import restore_for_inference
from diffjax.train.loop import sample
from diffjax.train.loop import train
from diffjax.train.optim import build_optimizer
from diffjax.train.parallel import initialize_distributed
from diffjax.train.parallel import make_data_mesh
from diffjax.train.state import TrainState
from diffjax.train.state import create_train_state
from diffjax.train.step import make_players_step
from diffjax.train.step import make_train_step
from diffjax.train.step import scan_steps
from diffjax.train.task import Phase
from diffjax.train.task import Player
from diffjax.train.task import Task
from diffjax.train.validation import validate_engine_config
from diffjax.train.workdir import IncompatibleWorkdirError
from diffjax.train.workdir import WorkdirError
from diffjax.train.workdir import WorkdirLockedError
