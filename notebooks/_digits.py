"""A small convolutional classifier for scikit-learn's 8x8 digits, shared by the notebooks.

The parameters are a nested dict of JAX arrays, trained full-batch by `pytree_minimize.minimize`
with L-BFGS-B: the notebooks that use the classifier (feature visualisation, adversarial example,
calibration) all start from `train()`, which takes a few seconds on a CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from pytree_minimize import minimize

CHANNELS = (8, 16)


class Splits(NamedTuple):
    """Images `(n, 8, 8, 1)` in [0, 1] (float32) and integer labels for each split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_splits(seed: int = 0) -> Splits:
    """Train (1000), validation (397) and test (400) splits, stratified by class."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    x_train, x_rest, y_train, y_rest = train_test_split(
        images, labels, train_size=1000, stratify=labels, random_state=seed
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=400, stratify=y_rest, random_state=seed
    )
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test)


def init_params(seed: int = 0) -> dict:
    """He-initialised weights: 3x3 convolution, 2x2 average pool, 3x3 convolution, dense layer."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    c1, c2 = CHANNELS

    def he(key, shape, fan_in):
        return jax.random.normal(key, shape, jnp.float32) * jnp.sqrt(2.0 / fan_in)

    return {
        "conv1": {"w": he(k1, (3, 3, 1, c1), 9), "b": jnp.zeros(c1)},
        "conv2": {"w": he(k2, (3, 3, c1, c2), 9 * c1), "b": jnp.zeros(c2)},
        "dense": {"w": he(k3, (4 * 4 * c2, 10), 4 * 4 * c2), "b": jnp.zeros(10)},
    }


def _conv(layer: dict, x: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(
        x, layer["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + layer["b"]


def _pool(x: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def features(params: dict, images: jax.Array) -> jax.Array:
    """The second convolution's activations (before its ReLU), shape `(n, 4, 4, 16)`."""
    h = _pool(jax.nn.relu(_conv(params["conv1"], images)))
    return _conv(params["conv2"], h)


def logits(params: dict, images: jax.Array) -> jax.Array:
    """Class scores, shape `(n, 10)`."""
    h = jax.nn.relu(features(params, images))
    return h.reshape(h.shape[0], -1) @ params["dense"]["w"] + params["dense"]["b"]


def loss(params: dict, images: jax.Array, labels: jax.Array, l2: float = 1e-4) -> jax.Array:
    """Mean cross-entropy plus a small weight decay."""
    scores = logits(params, images)
    nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(scores), labels[:, None], axis=1))
    decay = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(params))
    return nll + l2 * decay


def train(splits: Splits, maxiter: int = 150, seed: int = 0):
    """Fits the classifier with L-BFGS-B on the whole training split; returns the result."""
    return minimize(
        loss,
        init_params(seed),
        args=(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)),
        method="L-BFGS-B",
        options={"maxiter": maxiter},
    )


def accuracy(params: dict, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of `images` classified as `labels`."""
    predicted = np.asarray(jnp.argmax(logits(params, jnp.asarray(images)), axis=1))
    return float(np.mean(predicted == labels))
