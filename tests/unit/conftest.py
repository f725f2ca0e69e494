"""The unit ring. mediapipe imports sounddevice, which runs `ldconfig` when imported: it is imported here, before
any test, so the ring's rule (no program started) judges what the tests do, not which test imported it first."""

import mediapipe  # noqa: F401
