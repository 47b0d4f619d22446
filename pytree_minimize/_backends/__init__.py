"""One backend per framework (JAX, PyTorch, TensorFlow, NumPy): each turns a user's function of a
pytree into the flat float64 evaluations the drivers hand to scipy.

Each module imports its own framework; nothing here is imported until a port (or
`pytree_minimize` itself, for JAX) asks for it.
"""
