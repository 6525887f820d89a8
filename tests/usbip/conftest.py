"""The session fixtures of tests/backends (Debian's arm64 kernel in a real boot image)."""

from tests.backends.conftest import arm64_kernel, builder, pool

__all__ = ["arm64_kernel", "builder", "pool"]
