"""What every entry point and every framework shares: the flat-vector layout, the method tables,
the backend contract, the compile cache, the drop-in casts, history and bookkeeping.

Nothing here imports a framework (JAX, PyTorch, TensorFlow) or knows one entry point's
conventions.
"""
