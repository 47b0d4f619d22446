"""The `scipy.optimize.minimize` driver: its calling conventions, over any backend."""
