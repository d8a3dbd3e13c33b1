"""Data: toy 2D samplers and Gaussian-mixture targets with exact densities, images, text,
points on manifolds, snapshots of dynamical systems, and scientific simulators (correlated
series, a limit order book, Lorenz-96 ensembles, layered velocity volumes) with loaders of
users' files."""
from diffjax.data.arrays import array_sampler
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.gaussian_mixture import grid_means
from diffjax.data.gaussian_mixture import isotropic_mixture
from diffjax.data.gaussian_mixture import mode_mixture
from diffjax.data.gaussian_mixture import ring_mixture
from diffjax.data.toy2d import TOY_2D
from diffjax.data.toy2d import get_sampler
from diffjax.data.mixture_oracle import MixtureOracle
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.data.mixture_oracle import standard_normal_mixture
from diffjax.data import digits as _digits  # Registers "digits".
from diffjax.data.images import IMAGE_DATASETS
from diffjax.data.images import DatasetNotPreparedError
from diffjax.data.images import ImageSource
from diffjax.data.images import ImageStream
from diffjax.data.images import image_batches
from diffjax.data.images import load_image_dataset
from diffjax.data.conditional_mixture import ClassConditionalMixture
from diffjax.data.conditional_mixture import two_class_mixture
from diffjax.data.manifolds import MANIFOLDS
from diffjax.data.text import TEXT_DATASETS
from diffjax.data.series_files import check_window
from diffjax.data.series_files import load_array
from diffjax.data.series_files import load_series
from diffjax.data.correlated_series import correlated_series
from diffjax.data.correlated_series import stationary_correlation
from diffjax.data.lorenz96 import Ensembles
from diffjax.data.lorenz96 import lorenz96_ensembles
from diffjax.data.order_book import OrderBook
from diffjax.data.order_book import OrderStream
from diffjax.data.order_book import simulate_order_flow
from diffjax.data.seismic import MASK_KINDS
from diffjax.data.seismic import check_trace_mask
from diffjax.data.seismic import layered_volumes
from diffjax.data.seismic import load_trace_mask
from diffjax.data.seismic import load_volumes
from diffjax.data.seismic import trace_mask
