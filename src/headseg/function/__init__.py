"""What Function Compute runs, and nothing else: the handler and everything it calls. The FC code package is this
folder (with `headseg/__init__.py` and `index.py`); it imports nothing from `headseg.ops`, `headseg.local` or
`headseg.cli`."""
