"""Credentials for OSS and imageseg: the function role's STS token on FC, or keys from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from headseg.function.errors import ConfigError

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


@dataclass(frozen=True)
class Credentials:
    """An access key, with the STS token when it is temporary. The secret and token never print."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, context: Any = None, env: Mapping[str, str] | None = None) -> "Credentials":
        """FC python3.10 puts the role's credentials on `context.credentials`; python3.12 and a laptop use
        the `ALIBABA_CLOUD_*` environment variables."""
        creds = getattr(context, "credentials", None)
        key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
        if key_id:
            secret = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
            token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
            return cls(key_id, secret or "", token or None)
        env = os.environ if env is None else env
        key_id = env.get(ENV_ACCESS_KEY_ID, "")
        secret = env.get(ENV_ACCESS_KEY_SECRET, "")
        if not key_id or not secret:
            raise ConfigError(
                "no credentials: give the function a role (FC passes its STS token in the context) or set "
                f"{ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}"
            )
        return cls(key_id, secret, env.get(ENV_SECURITY_TOKEN) or None)

    def secrets(self) -> list[str]:
        """The values that must never reach a log line."""
        return [value for value in (self.access_key_secret, self.security_token) if value]
