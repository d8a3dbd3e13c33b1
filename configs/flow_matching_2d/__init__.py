"""Flow-matching variants on 2D toys (Tong et al., "Improving and generalizing flow-based
generative models with minibatch optimal transport"): one config per method."""
