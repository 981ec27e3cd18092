"""Microbenchmark: the tagger's CPU per report (intake's request path), by text length.

    .venv/bin/python bench/tagging_micro.py

Prints microseconds per report for a report with a service_code (severity and flags only)
and without (category inference too), for short, typical and longest-read texts.
"""

from __future__ import annotations

import time
from pathlib import Path

from gridline.common.policy.catalogue import load_catalogue_text
from gridline.intake.domain import tagging

CATALOGUE = load_catalogue_text(
    (Path(__file__).resolve().parents[1] / "config" / "catalogue.yaml").read_text("utf-8")
)
TEXTS = {
    "short (8 chars)": "路边有垃圾堆",
    "typical (60 chars)": "楼道里有人给电瓶车飞线充电，电线裸露，楼里住着独居老人。"
    "Someone charges an e-bike in the corridor.",
    "long (1000+ chars, read to 1000)": "小区门口的垃圾桶坏了，垃圾堆满地。" * 70,
}


def per_report_us(text: str, code: str | None, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        tagging.tag(CATALOGUE, text, code)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    started = time.perf_counter()
    tagging.warm_up()
    tagging.tagger_for(CATALOGUE)
    print(f"start-up (jieba dictionary + catalogue terms): {time.perf_counter() - started:.2f} s")
    for name, text in TEXTS.items():
        n = 200 if len(text) > 500 else 3000
        client = per_report_us(text, "exposed-garbage", n)
        inferred = per_report_us(text, None, n)
        print(f"{name:36} service_code given {client:8.1f} us   inferred {inferred:8.1f} us")


if __name__ == "__main__":
    main()
