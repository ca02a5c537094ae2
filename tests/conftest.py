"""Project-wide test configuration.

``pytester`` lets the plugin tests run small synthetic phases in a temporary
directory, in-process and in a subprocess (the latter for xdist).
"""

pytest_plugins = ["pytester"]
