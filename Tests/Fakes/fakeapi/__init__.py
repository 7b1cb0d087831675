"""Scriptable fakes of the Meta Graph, YouTube/Google and LinkedIn APIs for SocialSidecar's tests.

The entry point is `fake_platforms.py` next to this package; see README.md for the API.
"""

from .server import FakePlatforms, sidecar_config
from .media import media_bytes, media_sha256

__all__ = ["FakePlatforms", "sidecar_config", "media_bytes", "media_sha256"]
