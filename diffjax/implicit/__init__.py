"""Functions as data (DDMI): hierarchical positional embeddings read at any coordinates
(`positional`) and the autoencoder from pixel images to them (`autoencoder`)."""
from diffjax.implicit.autoencoder import (FunctionAutoencoder, autoencoder_loss,
                                          decode_batch, init_autoencoder, render,
                                          target_values)
from diffjax.implicit.positional import (DOMAIN, bilinear, check_coordinates,
                                         fourier_features, grid_coordinates, latent_size,
                                         read_embedding, split_levels)
