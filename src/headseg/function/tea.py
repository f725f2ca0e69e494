"""What the Alibaba Cloud SDKs' (tea-openapi / darabonba) exceptions mean, shared by SegmentHead and FC 3.0 calls."""

from __future__ import annotations


def is_network_error(exc: BaseException) -> bool:
    """Whether the SDK's request got no answer: a network failure (darabonba turns requests' IOError into its
    RetryError) rather than a reply or a bug."""
    import requests
    from darabonba.exceptions import RetryError
    from Tea.exceptions import RetryError as TeaRetryError

    return isinstance(exc, (requests.RequestException, OSError, RetryError, TeaRetryError))
