"""A number in the prose is a claim: markdown may not carry a measured number that code did not print.

Every markdown cell of every notebook, and the READMEs, are scanned for text that looks measured:
durations, percentages, metric values (AUC 0.95, F1 of 0.98), approximations ("about 12"), speed-ups
("3× faster") and test counts. Such a number belongs in a `mediag.verify.claim(...)` call, which prints
it from the measured value and asserts the bound the sentence states. Numbers that are settings,
constants of a formula or citations stay in markdown, listed with their reason in
`tests/prose_allowed.txt` (notebook, exact phrase, reason).

A comparative claim in markdown ("the best", "beats", "faster than") needs an assertion right after
it: the next code cell must call `claim(`, `check_true(` or `check(`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md"]

MEASURED = {
    "duration": r"(?<![\w.])\d+(?:\.\d+)?\s?(?:s|ms|sec|seconds?|min|minutes?|hours?|秒|分钟)(?![\w])",
    "percentage": r"(?<![\w.])\d+(?:\.\d+)?\s?%",
    "metric value": r"\b(?:AUC|F1|macro-F1|accuracy|SSIM|PSNR|sensitivity|specificity|PPV|NPV|ECE|Dice|"
                    r"perplexity|loss|准确率|灵敏度|特异度)\b[^.\n;]{0,30}?(?<![\w.§])\d?\.\d+",
    "approximation": r"(?:\b(?:about|around|near|nearly|roughly|approximately|almost)\s+|[≈~]\s?|约|大约)\d",
    "speed-up": r"(?:\d+(?:\.\d+)?|twice|two|three|four|five|ten)\s?(?:×|x|times)?\s+(?:as fast|faster|slower|quicker)",
    "test count": r"\b\d[\d,]*\s+(?:passed|tests|checks)\b|\d+\s*(?:项测试|项检查)",
}
COMPARATIVE = r"\b(?:the best|beats?|outperforms?|faster than|more accurate|better than|worse than)\b"
ASSERTING = ("claim(", "check_true(", "check(")


def _prose(text: str) -> str:
    """Markdown without math, code and link targets: numbers there are formulas, settings and paths."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"`[^`\n]+`", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def _allowed() -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for line in (ROOT / "tests" / "prose_allowed.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            where, phrase, reason = (part.strip() for part in line.split("|"))
            assert reason, f"prose_allowed.txt: {line!r} gives no reason"
            allowed.setdefault(where, set()).add(phrase)
    return allowed


def findings(name: str, cells: list[dict]) -> list[str]:
    """Every measured-looking number or unasserted comparative in the markdown `cells` of `name`."""
    allowed = _allowed().get(name, set())
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = _prose("".join(cell["source"]))
        for kind, pattern in MEASURED.items():
            for m in re.finditer(pattern, text):
                line = text[max(0, m.start() - 40) : m.end() + 20].replace("\n", " ")
                if not any(phrase in line for phrase in allowed):
                    found.append(f"{name} c{i}: {kind} {m.group(0)!r} in '…{line}…'")
        if re.search(COMPARATIVE, text, flags=re.I):
            later = [c for c in cells[i + 1 :] if c["cell_type"] == "code"][:1]
            if not any(a in "".join(c["source"]) for c in later for a in ASSERTING):
                m = re.search(COMPARATIVE, text, flags=re.I)
                line = text[max(0, m.start() - 40) : m.end() + 20].replace("\n", " ")
                if not any(phrase in line for phrase in allowed):
                    found.append(f"{name} c{i}: comparative {m.group(0)!r} with no assertion after it: '…{line}…'")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_prose_has_no_hand_typed_measurement(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = findings(path.stem, cells)
    assert not found, "measured numbers typed into markdown (print them with mediag.verify.claim):\n" + "\n".join(found)


@pytest.mark.parametrize("path", READMES, ids=lambda p: p.name)
def test_readme_has_no_hand_typed_measurement(path):
    cells = [{"cell_type": "markdown", "source": [path.read_text(encoding="utf-8")]}]
    found = findings(path.name, cells)
    why = "measured numbers typed into a README (take them from a file make run writes):\n"
    assert not found, why + "\n".join(found)


def test_the_scanner_catches_what_it_must():
    cells = [{"cell_type": "markdown", "source": ["Runs in about 9 s. AUC 0.95, 3× faster than before."]},
             {"cell_type": "markdown", "source": ["GPT-2 is the best one."]},
             {"cell_type": "code", "source": ["print(1)"]}]
    found = " ".join(findings("nowhere", cells))
    for kind in ("duration", "metric value", "approximation", "speed-up", "comparative"):
        assert kind in found, kind
    counts = [{"cell_type": "markdown", "source": ["make test: 809 tests; make run: 427 checks; 全部 809 项测试。"]}]
    assert len([f for f in findings("nowhere", counts) if "test count" in f]) == 3
    clean = [{"cell_type": "markdown", "source": ["The kernel is $3\\times 3$ with `rtol=1e-10`."]}]
    assert findings("nowhere", clean) == []


def _sanitiser_patterns() -> list[str]:
    text = (ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("regex:")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_nbval_sanitiser_leaves_claim_sentences_alone(path):
    """nbval compares a claim's sentence (text/markdown and text/plain): no sanitiser pattern may hide it."""
    patterns = _sanitiser_patterns()
    assert patterns, "tests/nbval_sanitize.cfg has no patterns"
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code" or "claim(" not in "".join(cell["source"]):
            continue
        for out in cell.get("outputs", []):
            for key in ("text/markdown", "text/plain"):
                text = "".join(out.get("data", {}).get(key, ""))
                hit = next((p for p in patterns if text and re.search(p, text)), None)
                assert hit is None, f"{path.stem} c{i}: sanitiser pattern {hit!r} would hide part of the claim {text!r}"
