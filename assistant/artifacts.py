"""Model artifacts on disk, for every kind of model: one folder per version.

A folder holds the weights (any number of files) and manifest.json: the format,
the version, what the model was trained on and its metrics, and `files`, the
sha256 of every weight file. write_artifact() writes into a temp folder beside
the target and renames it into place, so a reader never sees half a version;
read_manifest() reads one back without loading any weights.

Plain file IO: no Django, no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class ArtifactError(ValueError):
    """An artifact folder is incomplete, corrupt or of an unknown format."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_artifact(out_dir: Path, manifest: dict, files: Mapping[str, Callable[[Path], None]]) -> None:
    """Write each weight file (name -> writer(path)) and the manifest, then rename the folder into place.

    `out_dir` may exist only as an empty folder: artifacts are never overwritten.
    The manifest's `files` records each file's checksum.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        checksums = {}
        for name, write in files.items():
            write(tmp / name)
            checksums[name] = file_sha256(tmp / name)
        manifest["files"] = checksums
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            out_dir.rmdir()
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def version_name(prefix: str, newest: object) -> str:
    """A new version's name: what it is, when to the microsecond (two runs in one second must not share
    a folder), and the newest turn it learned from."""
    from datetime import UTC, datetime

    return f"{prefix}-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}-{newest}"


def read_manifest(path: Path) -> dict:
    """The manifest of an artifact folder: a JSON object with a `version`. Weights are not read."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable manifest in {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"manifest in {path} is not an object")
    if not isinstance(manifest.get("version"), str) or not manifest["version"]:
        raise ArtifactError(f"manifest in {path} lacks a version")
    return manifest


def checked_file(folder: Path, manifest: dict, name: str) -> Path:
    """The path of weight file `name`, after checking it against the manifest's checksum."""
    path = Path(folder) / name
    expected = (manifest.get("files") or {}).get(name)
    try:
        if not expected or file_sha256(path) != expected:
            raise ArtifactError(f"{path} does not match its manifest checksum")
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    return path


def read_pickled(path: Path, fmt: str, name: str = "model.pkl") -> tuple[dict, Any]:
    """The manifest of an artifact of format `fmt` and its pickled file `name` (the learners' models: our own
    artifacts, checksummed against the manifest before they are unpickled)."""
    manifest = read_manifest(path)
    if manifest.get("format") != fmt:
        raise ValueError(f"{path} is not a {fmt} artifact")
    with checked_file(path, manifest, name).open("rb") as handle:
        return manifest, pickle.load(handle)
