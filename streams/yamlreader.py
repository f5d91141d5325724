"""Reading streams.yaml's YAML node tree with every error naming the file, the line and the key.

``streams.config`` reads the top level and the streams with it; ``streams.runconfig`` the ``run:``
block and each stream's run settings.
"""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from streams.kernel.errors import ConfigError

Fields = dict[str, tuple[Node, Node]]  # a mapping's keys -> (key node, value node)

_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Reader:
    """Walks a composed YAML node tree, reporting errors with file, line and key."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.constructor = SafeConstructor()

    def fail(self, node: Node | None, key: str, message: str) -> ConfigError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f" {key}:" if key else ""
        return ConfigError(f"{self.display}{line}:{where} {message}")

    @staticmethod
    def kind(node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        tag = node.tag.rsplit(":", 1)[-1]
        return {
            "int": "a number",
            "float": "a number",
            "bool": "true/false",
            "null": "nothing (null)",
            "timestamp": "a date",
        }.get(tag, "a string")

    def scalar(self, node: Node) -> Any:
        """The value of a scalar node; a tag streams.yaml has no use for, or a value its tag cannot
        read (``!!bool maybe``), names the line."""
        if node.tag == _MERGE_TAG:
            raise self.fail(node, "", "merge keys (`<<:`) are not supported in streams.yaml; write the keys out")
        if node.tag not in _PLAIN_TAGS:
            raise self.fail(node, "", f"the YAML tag {node.tag!r} is not supported in streams.yaml; remove it")
        try:
            value = self.constructor.construct_object(node)
            if isinstance(value, str):
                value.encode("utf-8")  # "\uDCFF" escapes a lone surrogate: no file, branch or message can hold it
            return value
        except UnicodeEncodeError:
            raise self.fail(
                node, "", "a string holding a lone surrogate (\\uD800-\\uDFFF) is not text; remove it"
            ) from None
        except (yaml.YAMLError, ValueError, LookupError, TypeError, OverflowError, AttributeError) as exc:
            shown = str(node.value)[:40]
            raise self.fail(node, "", f"{shown!r} cannot be read as {self.kind(node)} ({type(exc).__name__})") from None

    def mapping(self, node: Node, key: str, allowed: tuple[str, ...], hint: str) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, key, f"expected a mapping, got {self.kind(node)} ({hint})")
        result: dict[str, tuple[Node, Node]] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode) or not isinstance(self.scalar(knode), str):
                raise self.fail(knode, key, f"keys must be plain strings, got {self.kind(knode)}")
            k = self.scalar(knode)
            full = f"{key}.{k}" if key else k
            if allowed and k not in allowed:
                close = difflib.get_close_matches(k, allowed, n=1)
                suggestion = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(knode, full, f"unknown key; {suggestion}allowed keys: {', '.join(allowed)}")
            if k in result:
                raise self.fail(knode, full, "duplicate key; keep one of them")
            result[k] = (knode, vnode)
        return result

    def string(self, node: Node, key: str, hint: str, *, allow_null: bool = False) -> str | None:
        if isinstance(node, ScalarNode):
            value = self.scalar(node)
            if value is None and allow_null:
                return None
            if isinstance(value, str):
                return value
        raise self.fail(node, key, f"expected a string, got {self.kind(node)} ({hint})")

    def strings(self, node: Node, key: str, hint: str) -> list[tuple[str, int]]:
        if isinstance(node, ScalarNode) and self.scalar(node) is None:
            return []
        if not isinstance(node, SequenceNode):
            raise self.fail(node, key, f"expected a list of strings, got {self.kind(node)} ({hint})")
        items = []
        for item in node.value:
            if not isinstance(item, ScalarNode) or not isinstance(self.scalar(item), str):
                raise self.fail(item, key, f"expected a list of strings, found {self.kind(item)} in it ({hint})")
            items.append((self.scalar(item), item.start_mark.line + 1))
        return items

    def boolean(self, node: Node, key: str) -> bool:
        if isinstance(node, ScalarNode):
            value = self.scalar(node)
            if isinstance(value, bool):
                return value
        raise self.fail(node, key, f"expected true or false, got {self.kind(node)}")

    def integer(self, node: Node, key: str, low: int, high: int) -> int:
        if isinstance(node, ScalarNode):
            value = self.scalar(node)
            if isinstance(value, int) and not isinstance(value, bool):
                if low <= value <= high:
                    return value
                raise self.fail(node, key, f"{value} is out of range; use a whole number from {low} to {high}")
        raise self.fail(node, key, f"expected a whole number from {low} to {high}, got {self.kind(node)}")

    def duration(self, node: Node, key: str, *, allow_zero: bool = False) -> float:
        """A duration as people write it (``90s``, ``45m``, ``2h``), in seconds."""
        from streams.kernel.durations import DurationError, parse_duration

        text = self.string(node, key, "a duration such as 90s, 45m or 2h")
        assert text is not None
        try:
            return parse_duration(text, option=key, allow_zero=allow_zero)
        except DurationError as exc:
            raise self.fail(node, key, str(exc).removeprefix(f"{key} ")) from None

    def choice(self, node: Node, key: str, choices: tuple[str, ...]) -> str:
        text = self.string(node, key, " | ".join(choices))
        if text not in choices:
            raise self.fail(node, key, f"{text!r} is not one of {' | '.join(choices)}")
        return text
