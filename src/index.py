"""Function Compute entry point (`index.handler`, initializer `index.initialize`)."""

from headseg.handler import handler, initialize

__all__ = ["handler", "initialize"]
