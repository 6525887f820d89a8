"""Reading one YAML document as PyYAML's *node* graph, with errors that name the file.

The device-profile loader works on nodes (``compose``), not on constructed Python
objects, because the project's rules need what construction throws away: whether a scalar
was quoted, which tag was written explicitly, and whether a mapping repeats a key. This
module is that node level: composing the document (:func:`compose_document`) and a
:class:`NodeReader` that checks one node's type (mapping with known keys, list, string,
bounded integer, enum) and turns each mismatch into a
:class:`~fastboop.devpro.errors.ProfileError` naming the file, the key path, the line and
what was expected. Which keys a profile has is :mod:`fastboop.devpro.loader`'s business.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from fastboop.devpro.errors import ProfileError
from fastboop.devpro.scalars import parse_integer, plain_scalar_kind

__all__ = ["NodeReader", "compose_document"]

#: Longer than any u64 spelling with a few separators; such values are out of range.
_MAX_INTEGER_CHARS = 64

_TAG_KINDS = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "timestamp",
    "tag:yaml.org,2002:binary": "binary",
    "tag:yaml.org,2002:map": "mapping",
    "tag:yaml.org,2002:seq": "list",
    "tag:yaml.org,2002:set": "set",
    "tag:yaml.org,2002:omap": "ordered mapping",
    "tag:yaml.org,2002:pairs": "pairs",
}


class _Composer(yaml.SafeLoader):
    """SafeLoader that remembers which scalars carried an explicit tag (``!!str yes``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.explicit_scalars: set[int] = set()

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        node: yaml.ScalarNode = super().compose_scalar_node(anchor)
        if getattr(event, "tag", None) not in (None, "!"):
            self.explicit_scalars.add(id(node))
        return node


def compose_document(text: str, file: str) -> tuple[yaml.Node, set[int]]:
    """The single document's root node and the ids of its explicitly tagged scalars."""
    loader: _Composer | None = None
    try:
        loader = _Composer(text)  # the reader rejects control characters right here
        root = loader.get_single_node()
    except yaml.reader.ReaderError as error:
        raise ProfileError(
            file,
            None,
            f"invalid YAML: unacceptable character #x{error.character:04x} "
            f"at offset {error.position}",
            expected="printable text",
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f" at line {line}" if line is not None else ""
        problem = error.problem or error.context or "syntax error"
        if "expected a single document" in str(error.context):
            raise ProfileError(
                file,
                None,
                f"found a second document{where}; one profile per file",
                expected="a single YAML document",
                line=line,
            ) from None
        raise ProfileError(
            file, None, f"invalid YAML{where}: {problem}", expected="valid YAML", line=line
        ) from None
    except yaml.YAMLError as error:
        raise ProfileError(file, None, f"invalid YAML: {error}", expected="valid YAML") from None
    except RecursionError:
        raise ProfileError(
            file, None, "invalid YAML: nested too deeply", expected="a shallow mapping"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise ProfileError(
            file, "(root)", "expected mapping, got an empty document", expected="mapping"
        )
    return root, loader.explicit_scalars


class NodeReader:
    """Typed reading of one document's nodes; every mismatch is a ProfileError.

    ``unknown_key_hints`` maps (mapping path, key) to a hint for a key that is not allowed
    there, for the mistakes people make (a subclass sets it).
    """

    unknown_key_hints: dict[tuple[str, str], str] = {}

    def __init__(self, file: str, explicit_scalars: set[int]) -> None:
        self.file = file
        self.explicit = explicit_scalars

    def fail(
        self,
        path: str,
        detail: str,
        node: yaml.Node | None = None,
        *,
        expected: str | None = None,
        hint: str | None = None,
    ) -> ProfileError:
        line = node.start_mark.line + 1 if node is not None else None
        return ProfileError(self.file, path, detail, expected=expected, hint=hint, line=line)

    # -- node kinds -------------------------------------------------------------------

    def kind(self, node: yaml.Node) -> str:
        """The type a loader would give ``node``, named for messages."""
        if isinstance(node, yaml.ScalarNode):
            if id(node) in self.explicit or node.style is not None:
                return _TAG_KINDS.get(node.tag, f"value tagged {node.tag}")
            return plain_scalar_kind(node.value)
        return _TAG_KINDS.get(node.tag, f"value tagged {node.tag}")

    def mapping(
        self, node: yaml.Node, path: str, allowed: Iterable[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Check ``node`` is a mapping with unique, known string keys; return them by name."""
        if not isinstance(node, yaml.MappingNode) or self.kind(node) != "mapping":
            raise self.fail(
                path, f"expected mapping, got {self.kind(node)}", node, expected="mapping"
            )
        allowed = frozenset(allowed)
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                key = f"<{self.kind(key_node)}>"
            if key in entries:
                raise self.fail(
                    path, f"duplicate key '{key}'", key_node, expected="each key at most once"
                )
            if key not in allowed or self.kind(key_node) != "string":
                raise self.fail(
                    path,
                    f"unknown key '{key}'",
                    key_node,
                    expected="one of " + ", ".join(sorted(allowed)),
                    hint=self.unknown_key_hints.get((path, key)),
                )
            entries[key] = (key_node, value_node)
        return entries

    def required(
        self,
        entries: dict[str, tuple[yaml.Node, yaml.Node]],
        parent: yaml.Node,
        path: str,
        key: str,
    ) -> yaml.Node:
        if key not in entries:
            raise self.fail(
                path, f"missing required key '{key}'", parent, expected=f"a '{key}' key"
            )
        return entries[key][1]

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode) or self.kind(node) != "list":
            raise self.fail(path, f"expected list, got {self.kind(node)}", node, expected="list")
        return list(node.value)

    def string(self, node: yaml.Node, path: str, *, operator: str | None = None) -> str:
        kind = self.kind(node)
        if kind == "string" and isinstance(node, yaml.ScalarNode):
            return self.text(node, path)
        is_scalar = isinstance(node, yaml.ScalarNode)
        example = f"'{node.value}'" if is_scalar and node.value else "'1'"
        if operator is not None and is_scalar:
            raise self.fail(
                path,
                f"value must be a string; quote it, e.g. {operator}: {example}",
                node,
                expected="string",
            )
        hint = None
        if is_scalar and kind != "null":
            key = path.rsplit(".", 1)[-1]
            hint = f"quote it, e.g. {key}: {example}"
        raise self.fail(path, f"expected string, got {kind}", node, expected="string", hint=hint)

    def text(self, node: yaml.ScalarNode, path: str) -> str:
        """The scalar's text; JSON surrogate-pair escapes are joined, lone halves refused."""
        value = str(node.value)
        if any("\ud800" <= c <= "\udfff" for c in value):
            try:
                value = value.encode("utf-16", "surrogatepass").decode("utf-16")
            except UnicodeDecodeError:
                raise self.fail(
                    path,
                    "contains an unpaired UTF-16 surrogate escape",
                    node,
                    expected="valid Unicode text",
                ) from None
        return value

    def integer(self, node: yaml.Node, path: str, maximum: int) -> int:
        kind = self.kind(node)
        if kind != "integer" or not isinstance(node, yaml.ScalarNode):
            raise self.fail(
                path, f"expected integer, got {kind}", node, expected="integer (decimal or 0x hex)"
            )
        text = node.value
        shown_max = f"{maximum:#x}" if "x" in text else str(maximum)
        if len(text) > _MAX_INTEGER_CHARS:  # also keeps int() clear of its digit limit
            raise self.fail(
                path,
                f"value {text[:24]}... out of range (max {shown_max})",
                node,
                expected=f"at most {shown_max}",
            )
        value = parse_integer(text)
        if value is None:
            raise self.fail(
                path,
                f"unsupported integer form '{text}'; write it in decimal or 0x hex",
                node,
                expected="integer (decimal or 0x hex)",
            )
        if value < 0:
            raise self.fail(
                path, f"value {text} out of range (min 0)", node, expected="a non-negative integer"
            )
        if value > maximum:
            raise self.fail(
                path,
                f"value {text} out of range (max {shown_max})",
                node,
                expected=f"at most {shown_max}",
            )
        return value

    def enum_value(self, node: yaml.Node, path: str, choices: Iterable[str]) -> str:
        options = list(choices)
        text = self.string(node, path)
        if text not in options:
            raise self.fail(
                path,
                f"expected one of {', '.join(options)}, got '{text}'",
                node,
                expected="one of " + ", ".join(options),
            )
        return text
