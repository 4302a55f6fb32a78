"""Filter-expression compile time against expression size: is the parser linear?

Prints ONE JSON line. Expressions of realistic terms (``http.url CONTAINS "..." or
responsetime > 1.5 and ...``) of 8 KB and of the 64 Ki-character limit are compiled; the figure
that matters is ``per_kb_ratio_64k_vs_8k``: microseconds per KB at 64 KB over microseconds per KB
at 8 KB (1.0 = linear; the old tokenizer, which copied the rest of the source per token, was
quadratic: 8x more per KB at 8x the size, and an 800 KB expression took 6-7 s). Peer in the same
run: ``json.loads`` of a JSON array of the same terms as strings (a linear C parser), as the
ratio ``vs_json_loads_64k``. Figures are medians of REPEAT runs.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

from otel_xray_collector.api.filter import MAX_EXPRESSION_LENGTH, compile_filter  # noqa: E402

REPEAT = 7
TERM = '(http.url CONTAINS "/cart" and responsetime > 1.5) or annotation.tier = "gold" or '


def expression(size: int) -> str:
    text = (TERM * (size // len(TERM) + 1))[: size - 10]
    return text[: text.rfind(" or ")] + " or fault"


def median_seconds(work: Callable[[], object]) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    small, large = expression(8 * 1024), expression(MAX_EXPRESSION_LENGTH)
    small_s = median_seconds(lambda: compile_filter(small))
    large_s = median_seconds(lambda: compile_filter(large))
    as_json = json.dumps(large.split(" or "))
    json_s = median_seconds(lambda: json.loads(as_json))
    small_per_kb = small_s * 1e6 / (len(small) / 1024)
    large_per_kb = large_s * 1e6 / (len(large) / 1024)
    print(
        json.dumps(
            {
                "bench": "filter",
                "compile_8k_ms": round(small_s * 1e3, 3),
                "compile_64k_ms": round(large_s * 1e3, 3),
                "us_per_kb_8k": round(small_per_kb, 1),
                "us_per_kb_64k": round(large_per_kb, 1),
                "per_kb_ratio_64k_vs_8k": round(large_per_kb / small_per_kb, 2),
                "vs_json_loads_64k": round(large_s / json_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
