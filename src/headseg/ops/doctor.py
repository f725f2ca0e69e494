"""`headseg doctor`: whether a deployment will work, as a checklist of pass / warn / fail, each failure with its fix.

The checks are plain functions of what the FC 3.0 API and OSS say (`Function`, `Trigger`, `AsyncConfig`,
the bucket's location and lifecycle rules); `diagnose` gathers those facts and turns a service that cannot
be read into a failing line of its own, never a traceback. Nothing is changed, except with `fix=True` the scratch
prefix's lifecycle rule and the marks stamp of a prefix with no results, and the probe objects put and removed.
"""

from __future__ import annotations

import uuid
from importlib import resources
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from headseg.function.config import Config, prefixes_overlap
from headseg.function.credentials import Credentials
from headseg.function.errors import AccessDenied, ConfigError, HeadsegError, ObjectNotFound
from headseg.ops import standing
from headseg.ops.fcapi import AsyncConfig, Fc3Reader, Function, Trigger
from headseg.function.retry import Budget

HANDLED_EVENTS = frozenset({"PutObject", "PostObject", "CompleteMultipartUpload", "CopyObject"})
SEGMENTHEAD_REGION = "cn-shanghai"
SCRATCH_RULE = "headseg-scratch"
SCRATCH_DAYS = 1
SEGMENTHEAD_SECONDS = 30.0  # the SegmentHead check's budget, retries included


Level = Enum("Level", [("PASS", "pass"), ("WARN", "warn"), ("FAIL", "fail")])


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    message: str
    fix: str = ""  # one sentence, for warn and fail


@dataclass(frozen=True)
class Expected:
    """What s.yaml sets for the function (None: not checked)."""

    runtime: str | None = None
    handler: str = "index.handler"
    initializer: str = "index.initialize"
    timeout: int | None = None
    memory_mb: int | None = None
    bucket: str | None = None  # the bucket s.yaml's trigger watches


def check_function(function: Function | None, name: str, expected: Expected) -> Check:
    if function is None:
        return Check("function", Level.FAIL, f"no function {name!r} in FC 3.0", "deploy it with `s deploy`, or give --function")
    wrong = [
        f"{what} is {actual!r}, s.yaml sets {want!r}"
        for what, actual, want in (
            ("runtime", function.runtime, expected.runtime), ("handler", function.handler, expected.handler),
            ("initializer", function.initializer, expected.initializer), ("timeout", function.timeout, expected.timeout),
            ("memorySize", function.memory_mb, expected.memory_mb),
        )
        if want is not None and actual != want
    ]
    summary = f"{name}: {function.runtime}, {function.handler}, {function.timeout} s, {function.memory_mb} MB"
    if wrong:
        return Check("function", Level.FAIL, f"{summary}: " + "; ".join(wrong), "run `s deploy` again from this s.yaml")
    return Check("function", Level.PASS, summary)


def check_prefixes(environment: dict[str, str]) -> tuple[Check, Config | None]:
    try:
        config = Config.from_env(environment)
    except ConfigError as exc:
        return Check("prefixes", Level.FAIL, exc.message, "fix INPUT_PREFIX / OUTPUT_PREFIX in s.yaml and deploy"), None
    message = f"INPUT_PREFIX {config.input_prefix!r}, OUTPUT_PREFIX {config.output_prefix!r}: valid and disjoint"
    return Check("prefixes", Level.PASS, message), config


#: A trigger keeps the bucket it was created with: fc3's UpdateTrigger cannot change `sourceArn`.
MOVE_FIX = "a redeploy cannot move a trigger to another bucket: `s remove --trigger {name}`, then `s deploy` creates it anew"


def check_trigger(triggers: list[Trigger], bucket: str, config: Config, named: str | None = None) -> Check:
    """One of the function's triggers must watch exactly INPUT_PREFIX on `bucket`, which must be the bucket s.yaml
    names (`named`, when known); one that watches another bucket is named, with how to move it."""
    if named is not None and named != bucket:
        return Check("trigger", Level.FAIL, f"s.yaml names bucket {named!r}, not {bucket!r}", f"check --bucket {named}, the bucket s.yaml deploys for")
    mine = [(t, w) for t in triggers if (w := t.watches()) is not None and w[0] == bucket]
    exact = [(t, w) for t, w in mine if w[1] == config.input_prefix]
    away = [(t, w) for t in triggers if (w := t.watches()) is not None and w[0] != bucket and w[1] == config.input_prefix]
    if not exact and away:
        trigger, (elsewhere, prefix, _) = away[0]
        return Check(
            "trigger", Level.FAIL, f"no trigger on {bucket} watches INPUT_PREFIX {prefix!r}: {trigger.name} watches {elsewhere}/{prefix}",
            MOVE_FIX.format(name=trigger.name),
        )
    if not exact:
        seen = ", ".join(f"{t.name} ({w[1]!r})" for t, w in mine) or "none"
        return Check(
            "trigger", Level.FAIL, f"no trigger on {bucket} watches INPUT_PREFIX {config.input_prefix!r} (on this bucket: {seen})",
            "deploy s.yaml's trigger: its filter prefix must equal INPUT_PREFIX",
        )
    trigger, (_, _, events) = exact[0]
    if trigger.type == "oss" and not trigger.invocation_role:
        return Check("trigger", Level.FAIL, f"{trigger.name}: no invocation role", "give it invocationRole (s.yaml) so OSS can invoke the function")
    missing = set() if "*" in events else HANDLED_EVENTS - events
    if missing:
        return Check(
            "trigger", Level.WARN, f"{trigger.name} does not fire on {', '.join(sorted(missing))}",
            "add those ObjectCreated events to the trigger, or uploads made that way are never processed",
        )
    return Check("trigger", Level.PASS, f"{trigger.name} ({trigger.type}) watches {bucket}/{config.input_prefix}")


def check_loops(triggers: list[Trigger], bucket: str, config: Config) -> Check:
    output = config.output_prefix
    looping = [
        f"{t.function}/{t.name} ({w[1]!r})"
        for t in triggers if (w := t.watches()) is not None and w[0] == bucket and prefixes_overlap(output, w[1])
    ]
    if looping:
        return Check(
            "no loop", Level.FAIL, f"trigger(s) on {bucket} cover OUTPUT_PREFIX {output!r}: {', '.join(looping)}",
            "narrow their prefix so no function fires on headseg's own output",
        )
    return Check("no loop", Level.PASS, f"no trigger on {bucket} covers OUTPUT_PREFIX {output!r}")


def check_async(config: AsyncConfig | None) -> Check:
    if config is None:
        return Check(
            "async", Level.WARN, "no async invocation config: FC's defaults, and events that exhaust their retries are dropped",
            "set asyncInvokeConfig with an onFailure destination (s.yaml) and replay it with `headseg replay --events`",
        )
    if not config.max_retries:
        return Check("async", Level.WARN, "maxAsyncRetryAttempts is 0: a transient failure is never retried", "set it to 3 (s.yaml)")
    if not config.on_failure:
        return Check(
            "async", Level.WARN, f"{config.max_retries} retries, no onFailure destination: events that exhaust them are dropped",
            "uncomment destinationConfig.onFailure in s.yaml",
        )
    return Check("async", Level.PASS, f"{config.max_retries} retries, failures kept at {config.on_failure}")


def check_region(location: str) -> Check:
    if location == f"oss-{SEGMENTHEAD_REGION}":
        return Check("bucket", Level.PASS, f"reachable, in {SEGMENTHEAD_REGION} (SegmentHead's region)")
    return Check(
        "bucket", Level.WARN, f"in {location.removeprefix('oss-')}, not {SEGMENTHEAD_REGION}: SegmentHead cannot read its internal URLs",
        "set URL_MODE=advance, so the function uploads each image to SegmentHead",
    )


def check_expiry(rules: list[tuple[str, str, int | None]], config: Config) -> Check:
    scratch = config.scratch
    covering = [(rule_id, prefix, days) for rule_id, prefix, days in rules if scratch.startswith(prefix)]
    if not covering:
        return Check(
            "lifecycle", Level.FAIL, f"no lifecycle rule expires the scratch prefix {scratch!r}",
            "run `headseg doctor --fix` to add one (1 day), or add it in the OSS console",
        )
    rule_id, prefix, days = covering[0]
    if config.output_prefix.startswith(prefix):
        return Check("lifecycle", Level.WARN, f"rule {rule_id!r} expires {prefix!r}: the results too", f"narrow it to {scratch!r}")
    return Check("lifecycle", Level.PASS, f"rule {rule_id!r} expires {prefix!r} after {days} day(s)")


def check_marks(storage: Any, bucket: str, config: Config, fix: bool = False) -> Check:
    """Whether `status`, `backfill` and `replay` classify the inputs from listings alone (`standing.plan`). With
    `fix`, stamps a prefix that holds no results yet: there is nothing written before marks to migrate."""
    prefix, slow = config.input_prefix, "status, backfill and replay read every record"
    if any(prefix.startswith(stamped) for stamped in standing.stamped_prefixes(storage, config)):
        return Check("marks", Level.PASS, f"results under {prefix!r} are classified from two listings")
    if next(iter(storage.list(config.output_prefix + prefix)), None) is not None:
        return Check("marks", Level.WARN, f"results under {prefix!r} may predate marks: {slow}",
                     f"run `headseg migrate --bucket {bucket} --prefix {prefix}` once")
    if not fix:
        return Check("marks", Level.WARN, f"{prefix!r} is not stamped: {slow}", "`headseg doctor --fix` stamps it (nothing to migrate)")
    standing.stamp(storage, config, prefix)
    return Check("marks", Level.PASS, f"stamped {prefix!r}: no results yet, so nothing to migrate")


def probe_write(storage: Any, config: Config) -> Check:
    """Put a probe object under the output prefix, remove it, and check it is gone."""
    key = f"{config.output_prefix}.headseg-doctor-{uuid.uuid4().hex[:12]}.txt"
    try:
        storage.put(key, b"headseg doctor write probe\n", "text/plain")
        storage.delete(key)
        try:
            storage.head(key)
            return Check("output", Level.FAIL, f"{key} is still there after DeleteObject", "grant oss:DeleteObject on the output prefix")
        except ObjectNotFound:
            pass
    except HeadsegError as exc:
        return Check("output", Level.FAIL, f"cannot write and delete under {config.output_prefix!r}: {exc.message}",
                     "grant the function's role oss:PutObject and oss:DeleteObject on the output prefix")
    return Check("output", Level.PASS, f"{config.output_prefix!r} is writable and deletable (probe put and removed)")


def call_segmenthead(storage: Any, config: Config, credentials: Credentials) -> Check:
    """One billed SegmentHead call on the bundled portrait, handed over as the function hands over an upload:
    written under the scratch prefix, then a URL made with the function's URL_MODE and endpoints (the bytes
    with URL_MODE=advance); the portrait is removed after, whatever happened."""
    from headseg.function.app import build_storage
    from headseg.function.pipeline import segmenthead_url
    from headseg.function.segmenters import SegmentInput, Takes
    from headseg.function.segmenters.cloud import CloudSegmenter

    data = (resources.files("headseg.ops") / "assets" / "portrait.jpg").read_bytes()
    key = f"{config.scratch}.headseg-doctor-{uuid.uuid4().hex[:12]}.jpg"
    segmenter = CloudSegmenter(config, credentials)
    mode = config.url_mode.value
    try:
        storage.put(key, data, "image/jpeg")
        if segmenter.takes is Takes.BYTES:
            image = SegmentInput(data=data)
        else:  # signed as the function signs it: its OSS endpoints, its expiry
            image = SegmentInput(url=segmenthead_url(build_storage(config, credentials, storage.bucket), config, key))
        found = segmenter.segment(image, config.return_form, Budget.seconds(SEGMENTHEAD_SECONDS))
    except HeadsegError as exc:
        fix = (
            "grant viapi-imageseg:SegmentHead (AliyunVIAPIFullAccess) and activate imageseg for the account"
            if isinstance(exc, AccessDenied) else
            "SegmentHead must be able to fetch that URL: keep the bucket in cn-shanghai, or set URL_MODE=public or advance"
        )
        return Check("segmenthead", Level.FAIL, f"on the bundled portrait, URL_MODE={mode}: {exc.code}: {exc.message}", fix)
    finally:
        _remove(storage, key)
    return Check("segmenthead", Level.PASS, f"URL_MODE={mode}: {len(found.heads)} head(s) in the bundled portrait (one billed call)")


def _remove(storage: Any, key: str) -> None:
    try:
        storage.delete(key)
    except HeadsegError:
        pass  # the scratch prefix's lifecycle rule expires it


def guarded(name: str, fix: str, step: Callable[[], Check]) -> Check:
    """`step`, or a failing line naming what could not be read."""
    try:
        return step()
    except HeadsegError as exc:
        return Check(name, Level.FAIL, exc.message, fix)


FC_FIX = "check --fc-endpoint / --account-id and that the credentials may call fc:GetFunction, fc:ListFunctions and fc:ListTriggers"
OSS_FIX = "check --oss-endpoint, the bucket's name, and oss:GetBucketInfo for these credentials"


def diagnose(
    reader: Fc3Reader, storage: Any, bucket: str, function: str, expected: Expected, fix: bool = False,
    segmenthead: Credentials | None = None,
) -> list[Check]:
    """Every check, in order (the SegmentHead call only with `segmenthead`, the credentials to call it with); a
    service that cannot be reached is a failing line, and the rest still run."""
    checks: list[Check] = []
    config = None
    try:
        deployed = reader.function(function)
    except HeadsegError as exc:
        checks.append(Check("function", Level.FAIL, exc.message, FC_FIX))
    else:
        checks.append(check_function(deployed, function, expected))
        if deployed is not None:
            prefixes, config = check_prefixes(deployed.environment)
            checks.append(prefixes)
    if config is not None:
        checks += _deployment_checks(reader, function, bucket, config, expected.bucket)
    checks.append(guarded("bucket", OSS_FIX, lambda: check_region(storage.location())))
    if config is not None:
        checks += [
            probe_write(storage, config),
            guarded("lifecycle", OSS_FIX, lambda: _expiry(storage, config, fix)),
            guarded("marks", OSS_FIX, lambda: check_marks(storage, bucket, config, fix)),
        ]
        if segmenthead is not None:
            checks.append(call_segmenthead(storage, config, segmenthead))
    return checks


def _deployment_checks(reader: Fc3Reader, function: str, bucket: str, config: Config, named: str | None) -> list[Check]:
    def every_trigger() -> list[Trigger]:
        return [trigger for name in reader.function_names() for trigger in reader.triggers(name)]

    return [
        guarded("trigger", FC_FIX, lambda: check_trigger(reader.triggers(function), bucket, config, named)),
        guarded("no loop", FC_FIX, lambda: check_loops(every_trigger(), bucket, config)),
        guarded("async", FC_FIX, lambda: check_async(reader.async_config(function))),
    ]


def _expiry(storage: Any, config: Config, fix: bool) -> Check:
    check = check_expiry(list(storage.expiry_rules()), config)
    if check.level is Level.FAIL and fix:
        storage.add_expiry_rule(SCRATCH_RULE, config.scratch, SCRATCH_DAYS)
        return Check("lifecycle", Level.PASS, f"added rule {SCRATCH_RULE!r}: {config.scratch!r} expires after {SCRATCH_DAYS} day")
    return check
