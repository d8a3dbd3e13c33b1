"""Models and checkpoints of other frameworks as diffjax models and runs."""
from diffjax.interop.diffusers import Pretrained
from diffjax.interop.diffusers import diffusers_config
from diffjax.interop.diffusers import from_diffusers
from diffjax.interop.diffusers import to_diffusers
