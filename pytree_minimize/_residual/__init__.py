"""Vector-valued functions of a pytree: the `least_squares`, `curve_fit` and `root` drivers."""
