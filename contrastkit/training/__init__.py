"""The training engine: the step loop, data loading, run state, stages, logging, device and checks."""
