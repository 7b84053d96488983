"""The SyntaxError messages Node's JSON.parse gives, so malformed bodies are answered alike.

EventGate reports the parser's message in its problem `detail`; an author comparing the
sandbox with a real EventGate should see the same words. Only the error path runs this
scanner, so it favours being easy to check over being fast. It is iterative, so deeply
nested input cannot exhaust the stack.
"""

from __future__ import annotations

_WS = " \t\n\r"
_SNIPPET = 10  # characters V8 shows around the error in long inputs


def _token_message(text: str, pos: int) -> str:
    char = text[pos]
    if len(text) < 40:
        shown = f'"{text}"'
    else:
        start = max(0, pos - _SNIPPET)
        end = min(len(text), pos + _SNIPPET)
        shown = (
            ("..." if start else "") + f'"{text[start:end]}"' + ("..." if end < len(text) else "")
        )
        shown = shown if start or end < len(text) else f'"{text}"'
    return f"Unexpected token '{char}', {shown} is not valid JSON"


def json_parse_error(text: str) -> str | None:
    """Return V8's message for the first error in `text`, or None if it is valid JSON."""
    n = len(text)
    i = 0
    stack: list[str] = []  # '{' or '['
    expect = "value"  # value | key | colon | comma_or_end | key_or_end | value_or_end | done

    def skip(j: int) -> int:
        while j < n and text[j] in _WS:
            j += 1
        return j

    while True:
        i = skip(i)
        if i >= n:
            return None if expect == "done" else "Unexpected end of JSON input"
        c = text[i]
        if expect == "done":
            return f"Unexpected non-whitespace character after JSON at position {i}"
        if expect in ("key", "key_or_end"):
            if c == "}" and expect == "key_or_end":
                stack.pop()
                i += 1
                expect = "comma_or_end" if stack else "done"
                continue
            if c != '"':
                if expect == "key_or_end":
                    return f"Expected property name or '}}' in JSON at position {i}"
                return f"Expected double-quoted property name in JSON at position {i}"
            end, err = _scan_string(text, i)
            if err:
                return err
            i = end
            expect = "colon"
            continue
        if expect == "colon":
            if c != ":":
                return f"Expected ':' after property name in JSON at position {i}"
            i += 1
            expect = "value"
            continue
        if expect == "comma_or_end":
            top = stack[-1]
            if c == ",":
                i += 1
                expect = "key" if top == "{" else "value"
                continue
            if (top == "{" and c == "}") or (top == "[" and c == "]"):
                stack.pop()
                i += 1
                expect = "comma_or_end" if stack else "done"
                continue
            if top == "{":
                return f"Expected ',' or '}}' after property value in JSON at position {i}"
            return f"Expected ',' or ']' after array element in JSON at position {i}"
        # a value (possibly the end of an empty array)
        if expect == "value_or_end" and c == "]":
            stack.pop()
            i += 1
            expect = "comma_or_end" if stack else "done"
            continue
        if c == "{":
            stack.append("{")
            i += 1
            expect = "key_or_end"
            continue
        if c == "[":
            stack.append("[")
            i += 1
            expect = "value_or_end"
            continue
        if c == '"':
            end, err = _scan_string(text, i)
            if err:
                return err
            i = end
        elif c == "-" or c.isdigit():
            end, err = _scan_number(text, i)
            if err:
                return err
            i = end
        else:
            for word in ("true", "false", "null"):
                if text.startswith(word, i):
                    i += len(word)
                    break
            else:
                if word_prefix(text, i):
                    return "Unexpected end of JSON input"
                return _token_message(text, i)
        expect = "comma_or_end" if stack else "done"


def word_prefix(text: str, i: int) -> bool:
    rest = text[i:]
    return any(w.startswith(rest) for w in ("true", "false", "null")) and rest != ""


def _scan_string(text: str, i: int) -> tuple[int, str | None]:
    n = len(text)
    j = i + 1
    while j < n:
        c = text[j]
        if c == '"':
            return j + 1, None
        if c == "\\":
            if j + 1 >= n:
                break
            e = text[j + 1]
            if e == "u":
                digits = text[j + 2 : j + 6]
                if len(digits) < 4 and all(d in "0123456789abcdefABCDEF" for d in digits):
                    break
                if not all(d in "0123456789abcdefABCDEF" for d in digits):
                    return j, f"Bad Unicode escape in JSON at position {j}"
                j += 6
                continue
            if e not in '"\\/bfnrt':
                return j, f"Bad escaped character in JSON at position {j}"
            j += 2
            continue
        if ord(c) < 0x20:
            return j, f"Bad control character in string literal in JSON at position {j}"
        j += 1
    return j, f"Unterminated string in JSON at position {n}"


def _scan_number(text: str, i: int) -> tuple[int, str | None]:
    n = len(text)
    j = i
    if text[j] == "-":
        j += 1
        if j >= n:
            return j, "Unexpected end of JSON input"
        if not text[j].isdigit():
            return j, f"No number after minus sign in JSON at position {j}"
    if text[j] == "0":
        j += 1
    else:
        while j < n and text[j].isdigit():
            j += 1
    if j < n and text[j] == ".":
        j += 1
        if j >= n:
            return j, f"Unterminated fractional number in JSON at position {j}"
        if not text[j].isdigit():
            return j, f"Unterminated fractional number in JSON at position {j}"
        while j < n and text[j].isdigit():
            j += 1
    if j < n and text[j] in "eE":
        j += 1
        if j < n and text[j] in "+-":
            j += 1
        if j >= n or not text[j].isdigit():
            return j, f"Exponent part is missing a number in JSON at position {j}"
        while j < n and text[j].isdigit():
            j += 1
    return j, None
