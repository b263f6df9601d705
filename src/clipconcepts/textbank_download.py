"""Download a text-bank file and check its SHA-256 before keeping it (`textbank.source: authors`).

The authors' bank is the 3,498 image descriptions of Gandelsman et al.'s TEXTSPAN code
(yossigandelsman/clip_text_span, MIT, `text_descriptions/image_descriptions_general.txt`). It is
not shipped with this package: the workflow's local rule `textbank_download` fetches it on the
machine that runs Snakemake and keeps it under the run's results.

Standard library only (`urllib.request`), so the Snakefile can read `AUTHORS_URL` without our
dependencies. The file is streamed into a temporary file beside the output and renamed only
once its digest matches, so a failed or interrupted download leaves nothing at the output path.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Pinned to the commit that last changed the file (9 Oct 2023; the same bytes as on `main`),
# so the digest in the config cannot drift.
AUTHORS_URL = (
    "https://raw.githubusercontent.com/yossigandelsman/clip_text_span/"
    "b31787c5820eb2121cf2904f90d9c9edd6ff647d/text_descriptions/image_descriptions_general.txt"
)
SHA256_KEY = "textbank.sha256"
URL_KEY = "textbank.url"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A text bank that could not be downloaded, or whose digest does not match the config."""


@dataclass(frozen=True)
class Downloaded:
    """What was kept: where, from where, its digest and size."""

    path: Path
    url: str
    sha256: str
    n_bytes: int


def check_sha256(digest: str | None) -> str:
    """The digest in lower case; a ValueError naming the config key when it is not 64 hex digits."""
    text = (digest or "").strip().lower()
    if not _SHA256.match(text):
        raise ValueError(
            f"config key {SHA256_KEY} must be the file's SHA-256 (64 hex digits), got {digest!r}"
        )
    return text


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_checked(
    url: str,
    sha256: str,
    out: str | os.PathLike[str],
    *,
    timeout: float = 60.0,
    max_bytes: int = 64 << 20,
) -> Downloaded:
    """Download `url` to `out` if and only if its SHA-256 is `sha256`.

    Raises ValueError (a malformed digest, naming `textbank.sha256`) before any request, and
    DownloadError naming the URL when the server cannot be reached, answers with an HTTP error,
    sends more than `max_bytes`, or sends bytes with another digest (naming `textbank.sha256`).
    In every failure `out` is left as it was and no temporary file remains.
    """
    expected = check_sha256(sha256)
    if not url:
        raise ValueError(f"config key {URL_KEY} is empty: give the text bank's URL")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        n_bytes = 0
        with os.fdopen(fd, "wb") as handle:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        n_bytes += len(chunk)
                        if n_bytes > max_bytes:
                            raise DownloadError(
                                f"{url} sends more than {max_bytes} bytes: not a text bank "
                                f"(config key {URL_KEY})"
                            )
                        digest.update(chunk)
                        handle.write(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
                http_error = isinstance(err, urllib.error.HTTPError)
                reason = err if http_error else getattr(err, "reason", None) or err
                raise DownloadError(
                    f"cannot download the text bank from {url} (config key {URL_KEY}): {reason}. "
                    "The machine that runs Snakemake needs to reach it (a proxy is taken from "
                    "https_proxy); or download the file yourself, check its SHA-256, and use "
                    "textbank.source: file"
                ) from err
        got = digest.hexdigest()
        if got != expected:
            raise DownloadError(
                f"{url}: the downloaded file's SHA-256 is {got}, but the config key "
                f"{SHA256_KEY} says {expected}; nothing was written to {out}"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("downloaded %s (%d bytes, SHA-256 %s) -> %s", url, n_bytes, got, out)
    return Downloaded(out, url, got, n_bytes)
