"""Function Compute entry point (`index.handler`, initializer `index.initialize`)."""

from headseg.function import defer

defer.install()  # before the SDKs load: the modules they import for features headseg never runs stay unrun

from headseg.function.handler import handler, initialize  # noqa: E402

__all__ = ["handler", "initialize"]
