"""One set of rules for reading constraints, checked at every entry point: `minimize`,
`argmin` and the torch, TensorFlow and NumPy ports."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as sopt
from _entry_points import NAMES, entry_point

pytestmark = pytest.mark.parametrize("name", NAMES)


def _run(name: str, constraints, method: str = "SLSQP"):
    ep = entry_point(name)
    x0 = ep.array(np.array([2.0, -1.0]))
    return ep, ep.minimize(
        ep.sum_of_squares, x0, method=method, constraints=constraints, **ep.extra
    )


def _on_the_line(x):
    return x[0] + x[1] - 1.0


@pytest.mark.parametrize("kind", ["eq", "EQ", "Eq"])
def test_type_is_read_in_any_case(name, kind):
    # min |x|^2 on x0 + x1 = 1: x = (1/2, 1/2).
    ep, res = _run(name, {"type": kind, "fun": _on_the_line})
    np.testing.assert_allclose(ep.to_numpy(res.x), [0.5, 0.5], atol=1e-5)


def test_ineq_is_read_in_any_case(name):
    # min |x|^2 on x0 + x1 >= 1: the same point.
    ep, res = _run(name, [{"type": "INEQ", "fun": _on_the_line}])
    np.testing.assert_allclose(ep.to_numpy(res.x), [0.5, 0.5], atol=1e-5)


def test_unknown_dict_key_is_a_value_error(name):
    with pytest.raises(ValueError, match=r"`constraints\[0\]` has unknown key\(s\) \['fn'\]"):
        _run(name, {"type": "eq", "fun": _on_the_line, "fn": _on_the_line})


@pytest.mark.parametrize("kind", ["equal", None, 1])
def test_unknown_type_is_a_value_error(name, kind):
    with pytest.raises(ValueError, match=r"`constraints\[0\]\['type'\]` is .*expected 'eq'"):
        _run(name, {"type": kind, "fun": _on_the_line})


def test_uncallable_fun_is_a_type_error(name):
    with pytest.raises(TypeError, match=r"`constraints\[1\]\['fun'\]` must be callable"):
        _run(name, [{"type": "eq", "fun": _on_the_line}, {"type": "eq", "fun": 1.0}])


def test_an_object_that_is_no_constraint_is_a_type_error(name):
    with pytest.raises(TypeError, match=r"`constraints\[0\]` is a str; expected a dict"):
        _run(name, ["x0 + x1 == 1"])


def test_constraints_that_are_not_a_list_are_a_type_error(name):
    with pytest.raises(TypeError, match=r"`constraints` must be one constraint or a list"):
        _run(name, 3.0)


def test_complex_step_constraint_jacobian_is_a_value_error(name):
    constraint = sopt.NonlinearConstraint(_on_the_line, 0.0, 0.0, jac="cs")
    with pytest.raises(ValueError, match=r"`constraints\[0\]\.jac` is 'cs'"):
        _run(name, constraint, method="trust-constr")


def test_constraints_for_a_method_without_them(name):
    if name == "argmin":  # argmin is no drop-in for scipy: it refuses them
        with pytest.raises(ValueError, match=r"method 'BFGS' does not take constraints; use one"):
            _run(name, {"type": "eq", "fun": _on_the_line}, method="BFGS")
        return
    # minimize does as scipy does: a RuntimeWarning, and the constraints are ignored.
    with pytest.warns(RuntimeWarning, match="BFGS cannot handle constraints"):
        ep, res = _run(name, {"type": "eq", "fun": _on_the_line}, method="BFGS")
    np.testing.assert_allclose(ep.to_numpy(res.x), [0.0, 0.0], atol=1e-6)
