"""How a record ended: one `Outcome` per record, with a `Status` for machines and a reason for people."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    DONE = "done"  # cutouts and sidecar written
    SKIPPED = "skipped"  # nothing to do (headseg's own output, outside INPUT_PREFIX, settled already for this eTag)
    FAILED = "failed"  # permanent error, recorded in the error sidecar; FC must not retry
    RETRY = "retry"  # transient error that outlived the retries or the budget; the handler raises so FC retries
    REJECTED = "rejected"  # a malformed record (`events.RejectedRecord`): can never succeed; FC must not retry


@dataclass(frozen=True)
class Outcome:
    """How one record ended. `reason` is for people; `code` is stable for machines."""

    status: Status
    bucket: str
    key: str
    reason: str = ""
    code: str = ""
    heads: int = 0
    sidecar: str = ""  # the record written: the sidecar when done, the error sidecar when failed
    timings_ms: dict[str, float] = field(default_factory=dict)
    index: int | None = None  # the record's place in its event, for a rejected record

    def fields(self) -> dict[str, object]:
        """The outcome as log fields."""
        data: dict[str, object] = {"outcome": self.status.value, "bucket": self.bucket, "key": self.key}
        for name in ("reason", "code", "sidecar"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.status is Status.DONE:
            data["heads"] = self.heads
        if self.timings_ms:
            data["timings_ms"] = self.timings_ms
        if self.index is not None:
            data["index"] = self.index
        return data
