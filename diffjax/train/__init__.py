"""The training engine: state, optimiser, sharded multi-step train call, checkpoints, logs."""
from diffjax.train.checkpoint import CheckpointError
from diffjax.train.checkpoint import Checkpointer
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
from diffjax.train.task import Phase
from diffjax.train.task import Task
from diffjax.train.workdir import IncompatibleWorkdirError
