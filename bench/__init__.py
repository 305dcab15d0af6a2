"""Design-space sweeps of the sparse PE array: real layer shapes, RTL runs, reports (``python -m bench.sweep``)."""
