"""Drop-in modules for code written against other minimisation libraries.

Each keeps that library's own signature and behaviour and runs on this library's driver, so a
switch is one changed import:

    from pytree_minimize.compat.dict_minimize.torch_api import minimize

Nothing is imported here: each module loads only its own framework.
"""
