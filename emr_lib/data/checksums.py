"""Which files a copy of a dataset holds: names, sizes and sha256, and a copy compared against such a list.

The committed workshop tables were made on one third-party copy of Bijie; :data:`TABLES_COPY` lists its
files (never the files themselves), so anyone can check whether their copy is that one:
``python -m emr_lib data compare DATA`` (and ``doctor``, for the data the kit would use). Files are
matched by their role (image or mask) and name, whatever the layout: Bijie's official folders or the
kit's ``images/`` + ``masks/``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from .io import IMAGE_SUFFIXES

__all__ = ["TABLES_COPY", "file_list", "write_checksums", "compare_checksums"]

# the list of the copy behind every committed workshop table (figures/workshop/), from the project's root
TABLES_COPY = Path("data") / "bijie-224.sha256.tsv"


def _key(relative: Path) -> str:
    """``image/<name>`` or ``mask/<name>``: a file's role and name, the same in every layout."""
    role = "mask" if any(part.lower() in ("mask", "masks") for part in relative.parts[:-1]) else "image"
    return f"{role}/{relative.stem}"


def file_list(folder: str | Path) -> list[tuple[str, str, int, str]]:
    """(key, relative path, bytes, sha256) of every image file under ``folder``, sorted by key."""
    folder = Path(folder)
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        relative = path.relative_to(folder)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        rows.append((_key(relative), relative.as_posix(), path.stat().st_size, digest))
    return sorted(rows)


def write_checksums(folder: str | Path, path: str | Path) -> int:
    """Write ``folder``'s :func:`file_list` as a TSV at ``path``; return the number of files."""
    rows = file_list(folder)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["key", "path", "bytes", "sha256"])
        writer.writerows(rows)
    return len(rows)


def compare_checksums(folder: str | Path, path: str | Path) -> dict:
    """``folder`` against the list at ``path``: how many files are the same, and which differ, are missing
    (listed, not in the folder) or extra (in the folder, not listed), by key."""
    with open(path, newline="") as f:
        listed = {row["key"]: row["sha256"] for row in csv.DictReader(f, delimiter="\t")}
    held = {key: digest for key, _, _, digest in file_list(folder)}
    common = set(listed) & set(held)
    return {
        "same": sum(listed[key] == held[key] for key in common),
        "listed": len(listed),
        "differ": sorted(key for key in common if listed[key] != held[key]),
        "missing": sorted(set(listed) - set(held)),
        "extra": sorted(set(held) - set(listed)),
    }
