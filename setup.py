"""Only the C extensions live here; everything else is in pyproject.toml.

The extensions are optional: without a C compiler the server and the proxy run on the Python
path alone.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
SHARED = ["stack/core/resp_scan.h"]  # included by both: a change rebuilds both

setup(
    ext_modules=[
        Extension(
            "stack.server._fastlane",
            ["stack/server/_fastlane.c"],
            depends=SHARED,
            extra_compile_args=FLAGS,
            optional=True,
        ),
        Extension(
            "stack.proxy._router",
            ["stack/proxy/_router.c"],
            depends=SHARED,
            extra_compile_args=FLAGS,
            optional=True,
        ),
    ]
)
