"""Stack-trace parsers for the other SDK languages (translation.md §10.3)."""

from __future__ import annotations

from otel_xray.translate.stacktrace import (
    parse_dotnet,
    parse_go,
    parse_java,
    parse_javascript,
    parse_python,
    parser_for,
)


def test_java_skips_suppressed_common_and_malformed_lines() -> None:
    text = (
        "java.lang.IllegalStateException: state\n"
        "\tat a.B.c(B.java:1)\n"
        "\tat a.B.d(B.java:2\n"
        "\tat a.B.e(B.java:3)) trailing\n"
        "\tSuppressed: java.io.IOException: io\n"
        "\t\tat x.Y.z(Y.java:9)\n"
        "\tat java.base/java.util.ArrayList.forEach(ArrayList.java:)\n"
        "\t... 99 more\n"
        "Caused by: java.lang.IllegalArgumentException\n"
        "\tat a.C.f(C.java:7)\n"
    )
    first, cause = parse_java(text)
    assert first.frames == [
        {"path": "B.java", "line": 1, "label": "a.B.c"},
        {"path": "ArrayList.java", "line": 0, "label": "java.util.ArrayList.forEach"},
    ]
    assert (cause.type, cause.message) == ("java.lang.IllegalArgumentException", "")
    assert cause.frames == [{"path": "C.java", "line": 7, "label": "a.C.f"}]


def test_java_cause_message_continues_until_next_frame() -> None:
    text = "E: top\nCaused by: T: first line\nsecond line\n\tat a.B.c(B.java:1)\n"
    _, cause = parse_java(text)
    assert cause.message == "first linesecond line"


def test_php_traces_use_the_java_parser() -> None:
    text = "Exception: boom\n\tat grandparent_func(test.php:56)\n\tat parent_func(test.php:51)\n"
    (only,) = parser_for("php", text)(text)  # type: ignore[misc]
    assert [frame["line"] for frame in only.frames] == [56, 51]


def test_javascript_v8_frames() -> None:
    text = (
        "Error: boom\n"
        "    at speedy (/home/gbusey/file.js:6:11)\n"
        "    at makeFaster (/home/gbusey/file.js:5:3)\n"
        "    at node.js:906:3\n"
        "    at Array.forEach (native)\n"
        "    at native\n"
        "    at broken (/home/gbusey/file.js:1:1\n"
    )
    (only,) = parse_javascript(text)
    assert only.frames == [
        {"path": "/home/gbusey/file.js", "line": 6, "label": "speedy"},
        {"path": "/home/gbusey/file.js", "line": 5, "label": "makeFaster"},
        {"path": "node.js", "line": 906, "label": ""},
        {"path": "native", "line": 0, "label": "Array.forEach"},
        {"path": "native", "line": 0, "label": ""},
    ]


def test_nodejs_language_is_parsed_as_javascript() -> None:
    # OTel JS reports telemetry.sdk.language "nodejs"; the Collector only parses "javascript".
    assert parser_for("nodejs", "") is parse_javascript
    assert parser_for("webjs", "") is parse_javascript


def test_dotnet_frames_with_and_without_locations() -> None:
    text = (
        "System.FormatException: Input string was not in a correct format.\r\n"
        "   at System.Number.ThrowOverflowOrFormatException(ParsingStatus status, TypeCode type)\r\n"  # noqa: E501
        "   at MyNamespace.IntParser.Parse(String s) in C:\\apps\\MyNamespace\\IntParser.cs:line 11\r\n"  # noqa: E501
        " ---> System.Exception: inner\r\n"
        "   --- End of inner exception stack trace ---\r\n"
        "   at MyNamespace.Program.Main(String[] args) in C:\\apps\\MyNamespace\\Program.cs:line 12\r\n"  # noqa: E501
        "   at Broken.Frame(\r\n"
    )
    (only,) = parse_dotnet(text)
    assert only.frames == [
        {
            "path": "",
            "line": 0,
            "label": "System.Number.ThrowOverflowOrFormatException(ParsingStatus status, TypeCode type)",  # noqa: E501
        },
        {
            "path": "C:\\apps\\MyNamespace\\IntParser.cs",
            "line": 11,
            "label": "MyNamespace.IntParser.Parse(String s)",
        },
        {
            "path": "C:\\apps\\MyNamespace\\Program.cs",
            "line": 12,
            "label": "MyNamespace.Program.Main(String[] args)",
        },
    ]


def test_go_goroutine_dump() -> None:
    text = (
        "goroutine 19 [running]:\n"
        "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End.func1()\n"
        "\totel-go-core/opentelemetry-go/sdk/trace/span.go:323 +0x8f\n"
        "testing.tRunner(0xc0001b4000, 0x10)\n"
        "\t/usr/local/go/src/testing/testing.go:1193 +0x1a3\n"
        "goroutine 20 [running]:\n"
        "created by testing.(*T).Run\n"
        "\t/usr/local/go/src/testing/testing.go:1238 +0x63\n"
    )
    (only,) = parse_go(text)
    assert only.frames == [
        {
            "path": "otel-go-core/opentelemetry-go/sdk/trace/span.go",
            "line": 323,
            "label": "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End.func1()",
        },
        {
            "path": "/usr/local/go/src/testing/testing.go",
            "line": 1193,
            "label": "testing.tRunner(0xc0001b4000, 0x10)",
        },
        {
            "path": "/usr/local/go/src/testing/testing.go",
            "line": 1238,
            "label": "created by testing.(*T).Run",
        },
    ]


def test_python_block_without_frames_or_colon() -> None:
    text = (
        "Traceback (most recent call last):\n"
        "ValueError bad value\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "m.py", line 1, in <module>\n'
        "KeyError\n"
    )
    outer, inner = parse_python(text)
    assert outer.frames == [{"path": "m.py", "line": 1, "label": "<module>"}]
    assert (outer.type, outer.message) == ("KeyError", "")
    assert (inner.type, inner.message, inner.frames) == ("", "ValueError bad value", [])


def test_unknown_language_has_no_parser() -> None:
    assert parser_for("rust", "thread 'main' panicked") is None
