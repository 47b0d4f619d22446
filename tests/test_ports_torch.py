"""What only the PyTorch port has: dtypes, devices, detached results, `nn.Module` helpers, the
packed transfer path, `no_grad`. Behaviour every port shares is in `test_ports_shared.py`, which
builds its torch structures with the helpers here."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np
import pytest
import scipy.optimize as sopt

torch = pytest.importorskip("torch")

from pytree_minimize.ports.torch import load_into, minimize, parameters_of  # noqa: E402

Point = namedtuple("Point", ["u", "v"])
X0_FLAT = np.random.default_rng(0).uniform(-1.0, 1.0, 10)


def structure(flat: np.ndarray, dtype=torch.float64) -> dict:
    """Ten numbers as dict / OrderedDict / tuple / namedtuple leaves, in optree's order."""
    t = torch.tensor(np.asarray(flat), dtype=dtype)
    return {
        "a": t[0:3].clone(),
        "b": OrderedDict(c=t[3:7].reshape(2, 2).clone()),
        "d": (Point(u=t[7:9].clone(), v=t[9].clone()),),
    }


def concatenate(x: dict) -> torch.Tensor:
    point = x["d"][0]
    return torch.cat([x["a"], x["b"]["c"].reshape(-1), point.u, point.v.reshape(1)])


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def objective(x: dict) -> torch.Tensor:
    return rosenbrock(concatenate(x))


def flat_of(x: dict) -> np.ndarray:
    return concatenate(x).detach().numpy().astype(np.float64)


def value_and_gradient(x: dict) -> tuple[torch.Tensor, dict]:
    """The objective and scipy's gradient of it, as a structure of tensors (`jac=True`)."""
    return objective(x), structure(sopt.rosen_der(flat_of(x)))


def test_float32_stays_float32_and_results_are_detached():
    seen = []

    def fun(x):
        seen.append((x["w"].dtype, x["b"].dtype, x["w"].device))
        return ((x["w"] - 2.0) ** 2).sum() + (x["b"] + 1.0) ** 2

    w = torch.zeros(3, dtype=torch.float32, requires_grad=True)
    x0 = {"w": w, "b": torch.tensor(0.0, dtype=torch.float64)}
    result = minimize(fun, x0, method="BFGS")
    assert set(seen) == {(torch.float32, torch.float64, torch.device("cpu"))}
    assert result.x["w"].dtype == torch.float32 and result.x["b"].dtype == torch.float64
    assert result.jac["w"].dtype == torch.float32
    for leaf in (result.x["w"], result.x["b"], result.jac["w"]):
        assert not leaf.requires_grad and leaf.grad_fn is None
        assert leaf.device == torch.device("cpu")
    np.testing.assert_allclose(result.x["w"].numpy(), 2.0, atol=1e-4)
    np.testing.assert_allclose(result.x["b"].item(), -1.0, atol=1e-6)
    assert torch.equal(w, torch.zeros(3)) and w.grad is None  # x0 untouched


def test_packed_transfer_path_matches_autograd():
    """The path for non-CPU leaves (value and gradient packed into one tensor that crosses to the
    host once), exercised on CPU by marking the plan as off-host."""
    from pytree_minimize._backends.torch import TorchBackend
    from pytree_minimize._core.tree import build_layout

    x0 = structure(X0_FLAT)
    backend = TorchBackend(x0)
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    backend.plan(layout).on_cpu = False
    value, grad = backend.value_and_grad(objective, layout, ())(X0_FLAT.copy())
    np.testing.assert_allclose(value, sopt.rosen(X0_FLAT), rtol=1e-12)
    np.testing.assert_allclose(grad, sopt.rosen_der(X0_FLAT), rtol=1e-10)


def test_mixed_dtypes_and_complex_leaves():
    target = torch.tensor([1.0 + 2.0j, -0.5j], dtype=torch.complex64)

    def fun(x):
        assert x["z"].dtype == torch.complex64 and x["h"].dtype == torch.float16
        return (x["z"] - target).abs().square().sum() + (x["h"].double() - 0.5).square().sum()

    x0 = {"z": torch.zeros(2, dtype=torch.complex64), "h": torch.zeros(2, dtype=torch.float16)}
    result = minimize(fun, x0, method="BFGS", options={"gtol": 1e-4})
    assert result.x["z"].dtype == torch.complex64 and result.x["h"].dtype == torch.float16
    np.testing.assert_allclose(result.x["z"].numpy(), target.numpy(), atol=1e-3)
    np.testing.assert_allclose(result.x["h"].float().numpy(), 0.5, atol=1e-3)
    # torch's convention for a real function of z: d/dRe + i d/dIm, here 2 (z - target).
    early = minimize(fun, x0, method="L-BFGS-B", options={"maxiter": 1})
    expected = 2 * (early.x["z"].numpy() - target.numpy())
    assert np.abs(expected).min() > 0.1
    np.testing.assert_allclose(early.jac["z"].numpy(), expected, atol=1e-5)


def test_bfloat16_and_python_float_leaves():
    seen = []

    def fun(x):
        seen.append((x["h"].dtype, x["s"].dtype))
        return (x["h"].double() - 0.25).square().sum() + (x["s"] - 3.0) ** 2

    result = minimize(fun, {"h": torch.zeros(2, dtype=torch.bfloat16), "s": 0.5})
    assert set(seen) == {(torch.bfloat16, torch.float64)}
    assert result.x["h"].dtype == torch.bfloat16 and isinstance(result.x["s"], float)
    np.testing.assert_allclose(result.x["h"].float().numpy(), 0.25, atol=1e-2)
    np.testing.assert_allclose(result.x["s"], 3.0, atol=1e-6)


def test_fitting_an_nn_module_matches_least_squares():
    torch.manual_seed(0)
    inputs = torch.randn(40, 3, dtype=torch.float64)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
    targets = targets + 0.01 * torch.randn(40, 1, dtype=torch.float64)
    model = torch.nn.Linear(3, 1).double()

    def loss(params, inputs, targets):
        predictions = torch.func.functional_call(model, params, (inputs,))
        return ((predictions - targets) ** 2).mean()

    result = minimize(loss, parameters_of(model), args=(inputs, targets), method="L-BFGS-B")
    load_into(model, result.x)
    design = np.hstack([inputs.numpy(), np.ones((40, 1))])
    coef, *_ = np.linalg.lstsq(design, targets.numpy(), rcond=None)
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), coef[:3, 0], atol=1e-5)
    np.testing.assert_allclose(model.bias.detach().numpy(), coef[3], atol=1e-5)
    assert model.weight.requires_grad  # still a trainable parameter


def test_runs_under_no_grad():
    with torch.no_grad():
        result = minimize(objective, structure(X0_FLAT), method="L-BFGS-B")
    assert result.success


def test_torch_specific_errors_name_the_argument():
    with pytest.raises(TypeError, match="`fun` must return a 0-d tensor"):
        minimize(lambda x: 1.0, {"a": torch.zeros(2)})
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="`x` names"):
        load_into(model, {"weights": torch.zeros(1, 2)})
    with pytest.raises(ValueError, match=r"`x\['weight'\]` has shape"):
        load_into(model, {"weight": torch.zeros(2, 2)})
