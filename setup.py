"""Only the C extension lives here; everything else is in pyproject.toml.

The extension is optional: without a C compiler the server runs on the Python path alone.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "stack.server._fastlane",
            ["stack/server/_fastlane.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
