"""Models as pure (init, apply) pairs, built by name."""
from diffjax.models import mlp as _mlp  # Registers "mlp".
from diffjax.models.base import MODELS
from diffjax.models.base import Model
from diffjax.models.base import build_model
from diffjax.models.mlp import TimeMLP
from diffjax.models import unet as _unet  # Registers "unet".
from diffjax.models.unet import UNet
from diffjax.models import transformer as _transformer  # Registers "dit".
from diffjax.models import stacked as _stacked  # Registers "stacked_fields".
from diffjax.models import token_transformer as _token_transformer  # Registers "token_transformer".
from diffjax.models import diffusers_unet as _diffusers_unet  # Registers "diffusers_unet".
from diffjax.models import diffusers_dit as _diffusers_dit  # Registers "diffusers_dit".
from diffjax.models import residual_mlp as _residual_mlp  # Registers "residual_mlp".
