"""``$name`` expansion and list splitting, as Postfix does them (mac_expand, mystrtokq).

Theory of operation: Postfix keeps parameter values as written and expands them when a program
uses them, recursively. Supported forms: ``$name``, ``${name}``, ``$(name)``, ``$$`` (a literal
``$``), ``${name?value}`` (value when name is non-empty), ``${name:value}`` (value when empty),
the 3.0 forms ``${name?{value}}``, ``${name:{value}}``, ``${name?{v1}:{v2}}`` and the relational
``${{a} == {b}?{v1}:{v2}}`` (``==`` and ``!=``). An undefined name expands to nothing.
Expansion never fails: nesting deeper than :data:`MAX_DEPTH` (a loop such as ``a = $b``,
``b = $a``) is left as written, where Postfix itself would stop with a fatal error;
:func:`macro_loop` finds such loops so the audit can report them (PF-29).
"""

from __future__ import annotations

from collections.abc import Callable

Lookup = Callable[[str], str | None]

# Postfix stops at 100 nested macro calls ("unreasonable macro call nesting"); real
# configurations nest three or four deep, so a smaller bound loses nothing.
MAX_DEPTH = 30

_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_LIST_SEPARATORS = ", \t\r\n"


def expand(value: str, lookup: Lookup, depth: int = 0) -> str:
    """``value`` with every macro replaced; names resolved with ``lookup`` (recursively)."""
    if "$" not in value:
        return value
    if depth > MAX_DEPTH:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        dollar = value.find("$", i)
        if dollar < 0:
            out.append(value[i:])
            break
        out.append(value[i:dollar])
        i = dollar + 1
        if i >= n:
            out.append("$")
            break
        ch = value[i]
        if ch == "$":
            out.append("$")
            i += 1
        elif ch in "{(":
            close = _matching(value, i)
            if close < 0:  # unbalanced: keep the rest as written
                out.append(value[dollar:])
                break
            out.append(_expand_braced(value[i + 1 : close], lookup, depth))
            i = close + 1
        elif ch in _NAME:
            j = i
            while j < n and value[j] in _NAME:
                j += 1
            out.append(_resolve(value[i:j], lookup, depth))
            i = j
        else:
            out.append("$")
    return "".join(out)


def _matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start``, or -1."""
    opening = text[start]
    closing = "}" if opening == "{" else ")"
    level = 0
    for k in range(start, len(text)):
        c = text[k]
        if c == opening:
            level += 1
        elif c == closing:
            level -= 1
            if level == 0:
                return k
    return -1


def _resolve(name: str, lookup: Lookup, depth: int) -> str:
    found = lookup(name)
    return "" if found is None else expand(found, lookup, depth + 1)


def _strip_braces(text: str) -> str:
    text = text.strip()
    if text.startswith("{") and _matching(text, 0) == len(text) - 1:
        return text[1:-1].strip()
    return text


def _alternatives(text: str) -> tuple[str, str | None]:
    """``{v1}:{v2}`` -> (v1, v2); ``{v1}`` or ``v1`` -> (v1, None)."""
    text = text.strip()
    if text.startswith("{"):
        close = _matching(text, 0)
        if close > 0:
            rest = text[close + 1 :].strip()
            if rest.startswith(":"):
                return text[1:close].strip(), _strip_braces(rest[1:])
            return text[1:close].strip(), None
    return text, None


def _expand_braced(body: str, lookup: Lookup, depth: int) -> str:
    body = body.strip()
    if body.startswith("{"):
        return _relational(body, lookup, depth)
    j = 0
    while j < len(body) and body[j] in _NAME:
        j += 1
    name, rest = body[:j], body[j:].lstrip()
    if not name:
        return ""
    current = _resolve(name, lookup, depth)
    if not rest:
        return current
    op, arg = rest[0], rest[1:]
    when_set, when_empty = _alternatives(arg)
    if op == "?":
        chosen = when_set if current else (when_empty or "")
    elif op == ":":
        chosen = "" if current else when_set
    else:  # a function call ${name{...}} or something newer: no value we can know
        return ""
    return expand(chosen, lookup, depth + 1)


def _relational(body: str, lookup: Lookup, depth: int) -> str:
    """``{a} == {b} ? {v1} : {v2}`` (and ``!=``)."""
    left_end = _matching(body, 0)
    if left_end < 0:
        return ""
    left = expand(body[1:left_end], lookup, depth + 1)
    rest = body[left_end + 1 :].lstrip()
    op = rest[:2]
    rest = rest[2:].lstrip()
    if op not in ("==", "!=") or not rest.startswith("{"):
        return ""
    right_end = _matching(rest, 0)
    if right_end < 0:
        return ""
    right = expand(rest[1:right_end], lookup, depth + 1)
    rest = rest[right_end + 1 :].lstrip()
    if not rest.startswith("?"):
        return ""
    when_true, when_false = _alternatives(rest[1:])
    truth = (left == right) if op == "==" else (left != right)
    return expand(when_true if truth else (when_false or ""), lookup, depth + 1)


def references(value: str) -> list[str]:
    """The parameter names ``value`` refers to (``$a``, ``${a...}``, ``$(a)``), in order."""
    names: list[str] = []
    i = value.find("$")
    while 0 <= i < len(value) - 1:
        j = i + 1
        if value[j] == "$":
            i = value.find("$", j + 1)
            continue
        if value[j] in "{(":
            j += 1
        k = j
        while k < len(value) and value[k] in _NAME:
            k += 1
        if k > j and value[j:k] not in names:
            names.append(value[j:k])
        i = value.find("$", max(k, i + 1))
    return names


def macro_loop(name: str, lookup: Lookup) -> list[str] | None:
    """A chain ``[name, ..., name]`` when expanding ``name`` comes back to it, else None.

    Postfix stops such a configuration with "unreasonable macro call nesting".
    """
    path: list[str] = [name]
    seen: set[str] = set()

    def visit(current: str) -> list[str] | None:
        value = lookup(current)
        for ref in references(value or ""):
            if ref == name:
                return [*path, ref]
            if ref in seen or ref in path:
                continue
            seen.add(ref)
            path.append(ref)
            found = visit(ref)
            if found is not None:
                return found
            path.pop()
        return None

    return visit(name)


def split_list(value: str, separators: str = _LIST_SEPARATORS) -> list[str]:
    """Split on commas and blanks, keeping ``{ ... }`` groups (``inline:{ a=b, c=d }``) whole."""
    items: list[str] = []
    current: list[str] = []
    level = 0
    for c in value:
        if c == "{":
            level += 1
        elif c == "}" and level:
            level -= 1
        if level == 0 and c in separators:
            if current:
                items.append("".join(current))
                current = []
            continue
        current.append(c)
    if current:
        items.append("".join(current))
    return items
