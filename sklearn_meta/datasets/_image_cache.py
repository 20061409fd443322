"""The on-disk cache of an image folder's decoded pixels.

One cache per folder, size and mode: a JSON manifest (its key hashes every
file's path, size and modification time) naming a uint8 ``.npy`` of the
pixels and one of flags saying which rows are decoded, created empty and
filled as images are first read. Manifests are published atomically and
only ever replaced whole, so processes sharing a cache never see one's pixels
under another's flags. Used by :func:`load_image_folder`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np

from ._omniglot import _temporary_sibling

__all__: list[str] = []

# Bump when the cache files change meaning: every older cache is then stale.
_CACHE_VERSION = 1
_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


def _hash(header, *lines: str) -> str:
    """Hex sha256 of a JSON header and lines (file names may hold any byte)."""
    digest = hashlib.sha256(json.dumps(header).encode())
    for line in lines:
        digest.update(b"\n" + line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _read_manifest(path: Path, key: str, n_samples: int) -> dict | None:
    """Return the manifest at ``path`` if it and the files it names are sound."""
    try:
        manifest = json.loads(path.read_text())
        if manifest["version"] != _CACHE_VERSION or manifest["key"] != key:
            return None
        shape = (n_samples, _CHANNELS[manifest["mode"]], *manifest["image_size"])
        pixels_path, filled_path = _cache_paths(path, manifest)
        pixels = np.load(pixels_path, mmap_mode="r")
        filled = np.load(filled_path, mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: rebuilt
    if pixels.shape != shape or filled.shape != (n_samples,):
        return None
    if pixels.dtype != np.uint8 or filled.dtype != np.uint8:
        return None
    return manifest


def _cache_paths(manifest_path: Path, manifest: dict) -> tuple[Path, Path]:
    """Paths of the pixels and flags a manifest names by its nonce."""
    nonce = manifest["nonce"]
    # Only a nonce is read from the file, so a manifest cannot point
    # anywhere but at its own cache folder.
    if not (isinstance(nonce, str) and re.fullmatch("[0-9a-f]{8}", nonce)):
        raise ValueError(f"Bad nonce {nonce!r}.")
    stem = manifest_path.with_suffix("").name
    return (
        manifest_path.with_name(f"{stem}-{nonce}.npy"),
        manifest_path.with_name(f"{stem}-{nonce}.filled.npy"),
    )


def _create_cache(
    cache_dir: Path, stem: str, key: str, n_samples: int, size, mode: str
) -> dict:
    """Create empty pixel and flag files, then publish the manifest naming them.

    Each load names its files with a new nonce, and publishes its manifest
    only where none is (a hard link does not replace a file), so processes
    creating the cache of one folder at once (the ranks of a distributed
    job) all end up with the manifest of the first, and never with one's
    pixels under another's flags.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{stem}.json"
    manifest = {
        "version": _CACHE_VERSION,
        "key": key,
        "image_size": list(size),
        "mode": mode,
        "nonce": uuid.uuid4().hex[:8],
    }
    ours = _cache_paths(path, manifest)
    tmp = _temporary_sibling(path)
    try:
        _create_npy(ours[0], (n_samples, _CHANNELS[mode], *size))
        _create_npy(ours[1], (n_samples,))
        with open(tmp, "x") as out:
            json.dump(manifest, out)
        try:
            os.link(tmp, path)
        except FileExistsError:
            theirs = _read_manifest(path, key, n_samples)
            if theirs is not None:
                for file in ours:
                    file.unlink()
                return theirs
            _remove_damaged(cache_dir, stem, keep=ours)
            os.replace(tmp, path)
        except OSError:  # a file system without hard links
            os.replace(tmp, path)
    except BaseException:
        for file in ours:
            file.unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _remove_damaged(cache_dir: Path, stem: str, keep: tuple[Path, ...]) -> None:
    """Delete the pixels and flags of ``stem`` other than ``keep``.

    Called when the manifest of ``stem`` is damaged or names damaged files:
    since manifests are only ever replaced whole, no process can be using
    those files through a sound manifest.
    """
    for file in cache_dir.glob(f"{stem}-*.npy"):
        if file not in keep:
            file.unlink(missing_ok=True)


def _create_npy(path: Path, shape: tuple[int, ...]) -> None:
    """Create a zero-filled uint8 ``.npy`` at ``path``, atomically.

    Its blocks are reserved on disk where the system allows, so a full disk
    is an error here rather than a crash (SIGBUS) while writing through the
    memory map.
    """
    tmp = _temporary_sibling(path)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        del array
        if hasattr(os, "posix_fallocate"):
            with open(tmp, "r+b") as out:
                try:
                    os.posix_fallocate(out.fileno(), 0, os.fstat(out.fileno()).st_size)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise OSError(
                            exc.errno,
                            f"Not enough space in {path.parent} for the image cache "
                            f"({np.prod(shape) / 1e6:.0f} MB). Free some space, "
                            "pass another cache_dir, or a smaller size",
                        ) from exc
                    # Other errors: the file system cannot reserve space.
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(cache_dir: Path, folder_id: str, key: str) -> None:
    """Delete the caches of ``folder_id`` made for an older ``key``."""
    for path in cache_dir.glob(f"*{folder_id}-*"):
        name = path.name.lstrip(".")
        if name.startswith(f"{folder_id}-") and not name.startswith(
            f"{folder_id}-{key}"
        ):
            try:
                path.unlink()
            except OSError:
                pass  # in use elsewhere (Windows) or already gone
