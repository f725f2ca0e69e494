"""Function Compute entry point (`index.handler`, initializer `index.initialize`)."""

from headseg.function.handler import handler, initialize

__all__ = ["handler", "initialize"]
