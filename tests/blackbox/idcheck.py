"""Decodes IDs with independent implementations, for test_modern_ids.py.

Runs under the .tools/id-check venv (scripts/test-deps: python-ulid and
typeid-python, pinned). Reads a JSON list of [kind, text] from stdin, kind
one of uuid7, ulid, typeid; prints a JSON list of [unix_ms, 32 hex digits,
prefix]. Any value that does not parse raises (non-zero exit)."""
import json
import sys
import uuid

from typeid import TypeID
from ulid import ULID


def decode(kind, text):
    if kind == "uuid7":
        u = uuid.UUID(text)
        assert str(u) == text, f"not canonical lowercase: {text}"
        assert u.version == 7, f"version {u.version}: {text}"
        assert u.variant == uuid.RFC_4122, f"variant {u.variant}: {text}"
        return [u.int >> 80, u.hex, ""]
    if kind == "ulid":
        u = ULID.from_str(text)
        assert str(u) == text, f"not canonical: {text}"
        return [u.milliseconds, u.hex, ""]
    if kind == "typeid":
        t = TypeID.from_string(text)
        u = uuid.UUID(str(t.uuid))
        assert f"{t.prefix}_{t.suffix}" == text if t.prefix else t.suffix == text
        assert u.version == 7 and u.variant == uuid.RFC_4122, text
        return [u.int >> 80, u.hex, t.prefix]
    raise ValueError(f"unknown kind {kind}")


def main():
    print(json.dumps([decode(k, t) for k, t in json.load(sys.stdin)]))


if __name__ == "__main__":
    main()
