"""Graph generation with the system of SDEs of GDSS: graph datasets by name, pytree batches
of node features and adjacency, two score networks, the coupled PC sampler, MMD metrics,
an Erdős–Rényi baseline and the evaluation table."""
from diffjax.graphs.batch import Graph
from diffjax.graphs.batch import adjacency_batch
from diffjax.graphs.batch import check_adjacency
from diffjax.graphs.batch import degree_features
from diffjax.graphs.batch import graph_noise
from diffjax.graphs.batch import mask_graph
from diffjax.graphs.batch import pad_adjacencies
from diffjax.graphs.batch import quantize
from diffjax.graphs.build import build_gaussian_path
from diffjax.graphs.build import build_graph_diffusion
from diffjax.graphs.community import community_graph
from diffjax.graphs.community import community_small
from diffjax.graphs.community import train_test_split
from diffjax.graphs.datasets import GDSS_COMMUNITY_SMALL
from diffjax.graphs.datasets import GRAPH_DATASETS
from diffjax.graphs.datasets import GraphData
from diffjax.graphs.datasets import GraphDataset
from diffjax.graphs.datasets import load_graph_data
from diffjax.graphs.diffusion import GraphDiffusion
from diffjax.graphs.erdos_renyi import ErdosRenyi
from diffjax.graphs.evaluation import mmd_table
from diffjax.graphs.evaluation import pool_over_runs
from diffjax.graphs.mmd import GRAPH_STATISTICS
from diffjax.graphs.mmd import graph_mmd
from diffjax.graphs.mmd import graph_mmd_over_seeds
from diffjax.graphs.networks import ADJACENCY_NETWORKS
from diffjax.graphs.networks import NODE_NETWORKS
from diffjax.graphs.networks import build_adjacency_network
from diffjax.graphs.networks import build_node_network
from diffjax.graphs.orbits import orbit_counts
from diffjax.graphs.sampler import gdss_pc
