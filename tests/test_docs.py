"""Every section of docs/theory.md that the code cites (``docs/theory.md §4.3``, ``§6.1–6.2``, ``(§5.5)``) exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("rfdiff", "rfdiff_cli", "rfdiff_analysis", "experiments")
# §N, §N.M, and ranges §N–M / §N.M–N.K (en dash or hyphen)
CITATION = re.compile(r"§\s*(\d+(?:\.\d+)*)(?:\s*[–-]\s*(\d+(?:\.\d+)*))?")
HEADING = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\s")


def _headings() -> set[str]:
    text = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    return {m.group(1) for line in text.splitlines() if (m := HEADING.match(line))}


def _citations() -> dict[str, list[str]]:
    """Section number → the places ("path:line") that cite it."""
    found: dict[str, list[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for m in CITATION.finditer(line):
                    for section in filter(None, m.groups()):
                        found.setdefault(section, []).append(f"{path.relative_to(ROOT)}:{lineno}")
    return found


def test_headings_are_numbered_sections():
    heads = _headings()
    assert {"1", "2", "3", "4", "5", "6", "7"} <= heads and "4.3" in heads and "6.1" in heads


def test_every_cited_section_exists():
    heads = _headings()
    cited = _citations()
    assert len(cited) > 20                                   # the code does cite the document
    missing = {s: places[:5] for s, places in cited.items() if s not in heads}
    assert not missing, f"sections cited in the code but not headings of docs/theory.md: {missing}"


def test_the_citation_pattern():
    groups = [m.groups() for m in CITATION.finditer("(docs/theory.md §1–2, §3.2–3.3; §4.7) and §6")]
    assert groups == [("1", "2"), ("3.2", "3.3"), ("4.7", None), ("6", None)]


def test_tests_named_in_the_docs_exist():
    """Every ``tests/…py::test_name`` that the docs or README point to is a test of that file."""
    pointer = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
    named = [(f.name, m.groups()) for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             for m in pointer.finditer(f.read_text(encoding="utf-8"))]
    assert named
    missing = [(doc, path, name) for doc, (path, name) in named
               if not (ROOT / path).exists() or f"def {name}(" not in (ROOT / path).read_text(encoding="utf-8")]
    assert not missing, missing


def _resolve(dotted: str):
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_library_names_in_the_docs_exist():
    """Every `rfdiff.…` the docs name resolves, and so does every name listed after "Implemented by `rfdiff.X`"."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(f.read_text(encoding="utf-8") for f in docs)
    dotted = set(re.findall(r"`(rfdiff(?:\.\w+)+)", text))
    assert len(dotted) > 10
    missing = []
    for name in sorted(dotted):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    for module, names in re.findall(r"Implemented by `(rfdiff(?:\.\w+)*)` \(([^)]*)\)", text):
        for name in re.findall(r"`(\w+)`", names):
            try:
                _resolve(f"{module}.{name}")
            except (ImportError, AttributeError):
                missing.append(f"{module}.{name}")
    assert not missing, missing


# numbers as printed in prose: 1.461, 0.990, 8.41, 1e-6 (not section numbers, not parts of names like ψ_p)
NUMBER = re.compile(r"(?<![\w.§])\d+\.\d+(?![\w.])")


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def test_readme_short_answers_quote_only_numbers_their_reports_print():
    """Every decimal number in README's "Does the paper hold?" appears, as printed, in the generated report
    it cites (REPORT_maps.md, REPORT_large_p.md): prose cannot drift from the reports it summarises."""
    readme = _section((ROOT / "README.md").read_text(encoding="utf-8"), "## Does the paper hold?")
    for bullet in readme.split("\n- ")[1:]:
        reports = re.findall(r"figures/(REPORT\w*\.md)", bullet)
        printed = "".join((ROOT / "figures" / r).read_text(encoding="utf-8") for r in set(reports))
        tokens = set(NUMBER.findall(printed))
        for number in NUMBER.findall(bullet):
            if reports != ["REPORT.md"]:          # REPORT.md's bullet quotes no study number
                assert number in tokens, f"README quotes {number} but {sorted(set(reports))} do not print it"
