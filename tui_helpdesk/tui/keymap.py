"""The user's keymap: a TOML file of binding ids and the keys they should have.

    # ~/.config/tui-helpdesk/keymap.toml  (settings: [tui] keymap_path)
    [keys]
    "inbox.close" = "x"                 # one key
    "list.down" = "j,down,ctrl+n"       # several, comma-separated (or a list of strings)

Ids are the ones `?` shows per screen (every binding has one). A missing file is no keymap;
a broken one is reported and ignored, so a typo never stops the app from starting.
"""

from __future__ import annotations

import tomllib
from pathlib import Path


def load_keymap(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """The keymap in the file, and what was wrong with it (each problem one line)."""
    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return {}, [f"{file}: not read: {error}"]
    table = data.get("keys", data)
    if not isinstance(table, dict):
        return {}, [f'{file}: [keys] must be a table of binding id = "keys"']
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in table.items():
        if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
            keys = ",".join(keys)
        if not isinstance(keys, str) or not keys.strip():
            problems.append(f'{file}: {binding_id}: keys must be a string like "x" or "j,down"')
            continue
        keymap[str(binding_id)] = ",".join(k.strip() for k in keys.split(",") if k.strip())
    return keymap, problems
