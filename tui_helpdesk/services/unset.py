"""UNSET marks an argument that was not given: "leave it as it is" (None may be a value)."""

from typing import Any

UNSET: Any = object()
