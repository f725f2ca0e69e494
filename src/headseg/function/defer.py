"""Defer the SDK modules the function never runs: `install()` before the SDKs are imported (index.py does).

oss2 imports, at module level, what only its client-side encryption (`oss2.CryptoBucket`) runs: pycryptodome's
ciphers and the KMS client (aliyunsdkcore, which brings `cryptography` and a vendored requests). The modules
named below are created unexecuted (`importlib.util.LazyLoader`) and run the first time one of their
attributes is read, so code that does use them only pays on first use. A module an importer reads an
attribute of at import time is loaded then, as without this: that is why aiohttp, which the SDKs only use
for their async calls, is not here (darabonba reads `aiohttp.ClientResponse` on import).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Sequence

DEFERRED = frozenset({
    "aliyunsdkcore.client",  # oss2.crypto's KMS provider (oss2.CryptoBucket)
    "Crypto.Cipher.AES",  # oss2's client-side encryption
    "Crypto.Cipher.PKCS1_OAEP",  # oss2.crypto's RSA provider
    "Crypto.Cipher.PKCS1_v1_5",
    "Crypto.PublicKey.RSA",
})


class _Deferrer(importlib.abc.MetaPathFinder):
    """Finds the DEFERRED modules where the path finder would, and hands them out with a lazy loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def install() -> None:
    """Defer the DEFERRED modules in this interpreter (once; later calls do nothing)."""
    if not any(isinstance(finder, _Deferrer) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Deferrer())



def unrun() -> list[str]:
    """The DEFERRED modules imported so far that have not run. One stays of `LazyLoader`'s own module type until
    an attribute of it is read, which runs it: asking the module anything would, so this asks for its type."""
    return sorted(name for name in DEFERRED if name in sys.modules and type(sys.modules[name]) is not ModuleType)
