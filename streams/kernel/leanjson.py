"""JSON read and written by the C code ``json`` itself uses, without importing ``json``.

``import json`` imports ``re`` (with ``enum``, ``functools``, the regex compiler): about 9 ms on
the 2-core reference machine, as much as a bare interpreter's start. The commands answered before
click loads (``streams.cli.quickread``, ``streams.cli.quickstatus``) read lease and state files and
write their envelope with ``_json``'s scanner and encoder directly, configured as ``json.loads``
and ``json.dumps`` configure them, so the text is the same byte for byte. Where ``_json`` is
missing (another Python implementation) both fall back to ``json``.

Standard library only: the kernel floor.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NAN = float("nan")
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": _NAN}
_SPACE = " \t\n\r"  # json.decoder.WHITESPACE


class _Context:
    """What ``_json.make_scanner`` reads from a decoder: ``json.JSONDecoder()``'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_UNSET: Any = object()
_c_json: Any = _UNSET  # the module _json, or None where there is none
_scan: Any = None


def _c() -> Any:
    global _c_json
    if _c_json is _UNSET:
        try:
            import _json

            _c_json = _json
        except ImportError:
            _c_json = None
    return _c_json


def loads(text: str) -> object:
    """``json.loads(text)`` for a ``str``. ``ValueError`` when it is not one JSON document."""
    global _scan
    c = _c()
    if c is None:
        import json

        return json.loads(text)
    if _scan is None:
        _scan = c.make_scanner(_Context())
    if text.startswith("\ufeff"):
        raise ValueError("Unexpected UTF-8 BOM")
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("Expecting value") from None
    except SystemError:
        # _json raises its errors as json.decoder.JSONDecodeError, found in sys.modules only; with
        # json not imported it fails so. json itself then says what is wrong (ValueError).
        import json

        return json.loads(text)
    if len(text[end:].lstrip(_SPACE)) != 0:
        raise ValueError("Extra data")
    return value


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: object, *, ensure_ascii: bool = True) -> str:
    """``json.dumps(value, ensure_ascii=ensure_ascii)``."""
    c = _c()
    if c is None or not isinstance(value, (dict, list, tuple)):
        import json  # no _json, or a bare value (json's own special cases; never on the quick paths)

        return json.dumps(value, ensure_ascii=ensure_ascii)
    string = c.encode_basestring_ascii if ensure_ascii else c.encode_basestring
    # As json.JSONEncoder.iterencode builds it: a fresh markers dict (circular references refused).
    encode = c.make_encoder({}, _refuse, string, None, ": ", ", ", False, False, True)
    return "".join(encode(value, 0))
