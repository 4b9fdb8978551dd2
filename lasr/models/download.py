"""Resumable, checksum-verified, atomic HTTP download (for ``lasr weights download``; never used at run time).

The bytes go to ``<target>.part``; a later call continues it with an HTTP ``Range`` request (a server that
ignores the range answers 200 and the download restarts). Only a complete file whose size and sha256 (where
known) match is renamed to ``target``, so ``target`` never holds a partial file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from lasr.errors import LasrError

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60  # per socket operation


def _hash_existing(path: Path, digest) -> int:
    size = 0
    if path.is_file():
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK_BYTES):
                digest.update(block)
                size += len(block)
    return size


def download(url: str, target: str | Path, sha256: str | None = None, size: int | None = None,
             progress: bool = True) -> Path:
    """Fetch ``url`` into ``target`` (resuming ``target.part``); verify ``size`` and ``sha256`` when given.

    Raises :class:`LasrError` naming the URL on HTTP/network errors or a checksum/size mismatch (the partial
    file is deleted on a mismatch, kept on a network error so the next call resumes).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    have = _hash_existing(part, digest)
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 - URLs come from the registry
    except urllib.error.HTTPError as err:
        if err.code == 416 and have and (size is None or have == size):  # the part file is already complete
            return _finish(part, target, digest, sha256, size, url)
        raise LasrError(f"download failed: HTTP {err.code} {err.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as err:
        raise LasrError(f"download failed: {err} for {url}") from None
    with response:
        if have and response.status != 206:  # the server sent the whole file: start again
            have, digest = 0, hashlib.sha256()
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        mode = "ab" if have else "wb"
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=target.name, file=sys.stderr,
                   disable=not progress)
        try:
            with open(part, mode) as handle, bar:
                while block := response.read(CHUNK_BYTES):
                    handle.write(block)
                    digest.update(block)
                    bar.update(len(block))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise LasrError(f"download interrupted ({err}); run the same command again to resume: {url}") from None
    return _finish(part, target, digest, sha256, size, url)


def _finish(part: Path, target: Path, digest, sha256: str | None, size: int | None, url: str) -> Path:
    got = part.stat().st_size
    if size is not None and got != size:
        if got < size:
            raise LasrError(f"download incomplete: {got} of {size} bytes from {url}; run again to resume")
        part.unlink()
        raise LasrError(f"download from {url} has {got} bytes, expected {size}; deleted, run again")
    if sha256 and digest.hexdigest() != sha256.lower():
        part.unlink()
        raise LasrError(f"sha256 of the download from {url} is {digest.hexdigest()}, expected {sha256}; deleted")
    os.replace(part, target)
    return target
