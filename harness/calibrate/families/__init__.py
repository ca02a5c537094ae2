"""Calibration families; every module here is imported by ``load_families``.

To add a family, create a module in this package and decorate its function
with :func:`harness.calibrate.core.register_family` (see the core docstring).
"""
