"""What the running code came from, to tell when something kept for later went stale.

The warm command server (warm.py) stops when the code it imported changed; the TUI's start-up
cache (tui/quick_start.py) holds SQL compiled by this code and is not used by other code.
Standard library only: both ask before anything heavy is imported.
"""

from __future__ import annotations

import os
import sysconfig


def code_fingerprint(folders: list[str]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of every .py file under the folders. Folders' own mtimes are left
    out: the listing already shows a file added or removed, and Python creating a
    `__pycache__` on a fresh install's first imports must not make the code look changed
    (it invalidated the start-up cache a first start had just written)."""
    seen: list[tuple[str, int, int]] = []
    stack = list(folders)
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name == "__pycache__":
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.name.endswith(".py"):
                status = entry.stat()
                seen.append((entry.path, status.st_mtime_ns, status.st_size))
    return tuple(sorted(seen))


CodeState = tuple[tuple[tuple[str, int, int], ...], int]


def code_state() -> CodeState:
    """Every .py file of the package, and the site-packages folder itself (installing or
    upgrading a package changes its mtime)."""
    try:
        site_packages = os.stat(sysconfig.get_paths()["purelib"]).st_mtime_ns
    except OSError:
        site_packages = 0
    return code_fingerprint([os.path.dirname(os.path.abspath(__file__))]), site_packages
