"""The docs against the code and the reports.

Every section of docs/theory.md that the code cites (``docs/theory.md §4.3``, ``§6.1–6.2``, ``(§5.5)``) exists;
tests and library names the docs point to exist; every study number README.md and docs/results.md quote is one
a report prints; docs/results.md's short answer is the one figures/VERDICTS.json gives (rfdiff_analysis.results_doc).
"""
from __future__ import annotations

import bisect
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfdiff_analysis import results_doc

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


def test_the_docs_hold_no_control_characters():
    """A backslash sequence written through an unescaped string (\\rm, \\top, \\nu) turns into a control character
    and breaks the formula without a word: no text file of the docs holds one but the newline."""
    files = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "figures").glob("*.md"))]
    for path in files:
        text = path.read_bytes().decode("utf-8")
        bad = sorted({f"{ord(c):#04x}" for c in text if ord(c) < 32 and c != "\n"})
        assert not bad, f"{path.relative_to(ROOT)}: control characters {bad}"


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


# ---- docs that cannot drift: every study number quoted is one a report prints --------------------------------

# where a quoted number may come from: the generated reports, the verdicts as data, and finite_size.md's tables
# (its prose is not a source)
REPORTS = ROOT / "figures"
# a number as prose prints it: 8.41, 1.620, 3.22e5, 1e-4, 512 (not inside names like ρ_1 or rf_s0, not a section
# number; the sign is not read: prose writes "−0.59", "exponent 0.59" or "slopes 0.59 → 0.16" for the same value)
QUOTED = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-−+]?\d+)?(?!\w)")
PRINTED = re.compile(r"\d+(?:\.\d+)?(?:[eE][-−+]?\d+)?")
# not numbers of a study: stripped before reading
NOT_NUMBERS = [
    re.compile(r"`[^`]*`"),                                        # inline code: commands, file names, flags
    re.compile(r"<!--.*?-->"),                                     # comments
    re.compile(r"\]\([^)]*\)"),                                    # link targets
    re.compile(r"§\s*\d+(?:\.\d+)*(?:\s*[–-]\s*\d+(?:\.\d+)*)?"),  # section numbers, §6.1–6.2
    re.compile(r"\bFigs?\.\s*\d+"),                                # the paper's figure numbers
    re.compile(r"\bTheorem\s+\d+(?:\.\d+)?"),                      # the paper's theorem numbers
    re.compile(r"\d+(?=[⁰¹²³⁴⁵⁶⁷⁸⁹⁻])"),                           # the base of a power, 10⁴ (one digit of precision)
]
# numbers with two or more significant digits that no report prints, each with why it is not a study number
NOT_STUDY_NUMBERS = {
    "95": "the confidence level of every interval (95 %), a convention",
}


def _significant_digits(token: str) -> int:
    """Significant digits as printed: 0.05 → 1, 0.050 → 2, 1.620 → 4, 512 → 3, 3e-11 → 1."""
    return len(re.split(r"[eE]", token)[0].replace(".", "").lstrip("0"))


def _half_unit(token: str) -> float:
    """Half a unit of the last printed digit: 8.41 → 0.005, 3.22e5 → 500, 512 → 0.5."""
    mantissa, _, exponent = token.replace("−", "-").lower().partition("e")
    return 0.5 * 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))


def _value(token: str) -> float:
    return float(token.replace("−", "-"))


def _printed_numbers() -> list[tuple[float, float]]:
    """(value, half unit) of every number the sources print, sorted by value."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(REPORTS.glob("REPORT*.md"))]
    if (REPORTS / results_doc.FILENAME).exists():
        texts.append((REPORTS / results_doc.FILENAME).read_text(encoding="utf-8"))
    finite = (ROOT / "docs" / "finite_size.md").read_text(encoding="utf-8")
    texts.append("\n".join(line for line in finite.splitlines() if line.lstrip().startswith("|")))
    return sorted((_value(t), _half_unit(t)) for text in texts for t in PRINTED.findall(text))


def _unbacked(name: str, lines, printed, allowed=NOT_STUDY_NUMBERS) -> list[str]:
    """The quoted numbers of ``lines`` ((line number, text) pairs) that no source prints at their precision."""
    values = [v for v, _ in printed]
    out = []
    for lineno, line in lines:
        for pattern in NOT_NUMBERS:
            line = pattern.sub(" ", line)
        for token in QUOTED.findall(line):
            if _significant_digits(token) < 2 or token in allowed:
                continue
            x, h = _value(token), _half_unit(token)
            slack = h * (1 + 1e-9)
            lo, hi = bisect.bisect_left(values, x - slack), bisect.bisect_right(values, x + slack)
            # a source at least as precise as the quote, whose value rounds to it
            if not any(printed[i][1] <= slack for i in range(lo, hi)):
                out.append(f"{name}:{lineno}: {token}")
    return out


def _prose_lines(path: Path, section: str | None = None) -> list[tuple[int, str]]:
    """(line number, line) of ``path`` outside code blocks and the generated block (and inside ``section``)."""
    out, fenced, generated, inside = [], False, False, section is None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if section is not None and line.startswith("## "):
            inside = line.strip() == section
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if results_doc.BEGIN in line:
            generated = True
        if not (fenced or generated) and inside:
            out.append((lineno, line))
        if results_doc.END in line:
            generated = False
    return out


def test_every_study_number_in_the_docs_is_one_a_report_prints():
    """Every number with two or more significant digits in README's "Does the paper hold?" and in
    docs/results.md (outside code and the generated block) is printed, at its precision or finer, by
    figures/REPORT*.md, figures/VERDICTS.json or a table of docs/finite_size.md."""
    printed = _printed_numbers()
    lines = {"README.md": _prose_lines(ROOT / "README.md", "## Does the paper hold?"),
             "docs/results.md": _prose_lines(ROOT / "docs" / "results.md")}
    assert len(lines["README.md"]) > 5 and len(lines["docs/results.md"]) > 30
    missing = [m for name, ls in lines.items() for m in _unbacked(name, ls, printed)]
    assert not missing, ("numbers quoted in the docs that no report prints (figures/REPORT*.md, "
                         "figures/VERDICTS.json, docs/finite_size.md tables):\n" + "\n".join(missing))


LARGE_P_SECTION = "## The large-p study: τ_mem ∝ n on the finite network as d grows"


def test_the_large_p_answer_quotes_only_numbers_a_report_prints():
    """docs/finite_size.md's large-p section (the answer to the paper's headline on the finite network) quotes,
    outside code and in its tables, only numbers that figures/REPORT*.md or the benchmark results print."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(REPORTS.glob("REPORT*.md"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "benchmarks" / "results").glob("*.json"))]
    printed = sorted((_value(t), _half_unit(t)) for text in texts for t in PRINTED.findall(text))
    path = ROOT / "docs" / "finite_size.md"
    lines = []
    inside = False
    for lineno, line in _prose_lines(path):        # its tables too: here they are quotes, not a source
        if line.startswith("## "):
            inside = line.strip() == LARGE_P_SECTION
        if inside:
            lines.append((lineno, line))
    assert len(lines) > 20, "the large-p section is missing"
    allowed = {**NOT_STUDY_NUMBERS, "80": "80 % of a worker's memory to the unit, a sizing convention"}
    missing = _unbacked("docs/finite_size.md", lines, printed, allowed)
    assert not missing, "numbers in the large-p section that no report prints:\n" + "\n".join(missing)


def test_the_number_check_can_fail():
    printed = sorted([(8.41, 0.005), (1.62, 0.0005), (3.22e5, 500.0), (0.2389123, 0.0)])
    text = ("exponent 1.620 and 1.6 at ψ_n = 8.41, τ = 3.22e5, slope −0.239 (§6.4, Fig. 13, Theorem 3.1, 10⁴, "
            "`rfdiff run --p 4096`, 95 %, 0.05) but 8.410, 1.63, 3.3e5, 0.2385 and 4096")
    assert _unbacked("x", [(7, text)], printed) == ["x:7: 8.410", "x:7: 1.63", "x:7: 3.3e5", "x:7: 0.2385", "x:7: 4096"]


def test_the_docs_hold_the_generated_block():
    doc = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    block = results_doc.committed_block(doc)
    assert block.startswith(results_doc.BEGIN) and block.endswith(results_doc.END)


def test_the_short_answer_is_the_one_the_verdicts_give():
    """docs/results.md's generated block is what ``python -m rfdiff_analysis.results_doc figures`` writes."""
    if not (REPORTS / results_doc.FILENAME).exists():
        pytest.skip("figures/VERDICTS.json does not exist yet: `python -m rfdiff_analysis.report figures` writes it, "
                    "then `python -m rfdiff_analysis.results_doc figures` writes the block")
    doc = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    rows = results_doc.load(REPORTS)
    diff = results_doc.difference(doc, rows)
    assert not diff, ("docs/results.md's block differs from figures/VERDICTS.json; run "
                      "`python -m rfdiff_analysis.results_doc figures`:\n" + "\n".join(diff))


# ---- the generator on a synthetic VERDICTS.json -----------------------------------------------------------------

ROWS = [
    {"id": "tau_mem_large_p", "claim": "τ_mem ∝ n at p ≫ n", "parameters": "ψ_p = 256, ψ_n = 2 … 16, d = 16, 5 seeds",
     "verdict": "disagree", "evidence": "local exponent 1.268 [1.155, 1.380] against the theory's 0.859 ± 0.05",
     "numbers": {"value": 1.2681, "lo": 1.1549, "hi": 1.3802, "reference": 0.8593, "tolerance": 0.05}},
    {"id": "tau_gen_ladder", "claim": "τ_gen: d → ∞ limit equals the theory", "parameters": "t = 0.1, ψ_n = 8",
     "verdict": "agree", "evidence": "13.5 [13.3, 13.7] within 13.54 ± 3 %", "numbers": {"value": 13.51}},
    {"id": "atom_psin8", "claim": "atom weight 1 − (1 + ψ_n)/ψ_p", "parameters": "ψ_n = 8, d = 100",
     "verdict": "no verdict (1 seed)", "evidence": "0.752 against 0.859", "numbers": {"value": 0.752}},
    {"id": "fig13", "claim": "min E_score ∝ ψ_n^−0.59", "parameters": "ψ_p = 32, t = 0.01, 10 seeds",
     "verdict": "inconclusive", "evidence": "local slopes −0.29 … −0.67 straddle −0.59 ± 0.05", "numbers": {}},
]
DOC = "# Results\n\nprose 1.23\n\n" + results_doc.BEGIN + "\nold\n" + results_doc.END + "\n\nmore prose 4.56\n"


def _tokens(text: str) -> list[str]:
    return PRINTED.findall(text)


def _write(tmp_path, rows=ROWS, doc=DOC):
    (tmp_path / results_doc.FILENAME).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "results.md").write_text(doc, encoding="utf-8")
    return [str(tmp_path), "--doc", str(tmp_path / "results.md")]


def test_the_block_holds_only_numbers_of_the_verdicts_grouped_by_verdict(tmp_path):
    _write(tmp_path)
    block = results_doc.render(results_doc.load(tmp_path))
    source = set(_tokens((tmp_path / results_doc.FILENAME).read_text(encoding="utf-8")))
    assert set(_tokens(block)) <= source and _tokens(block)
    lines = [line for line in block.splitlines() if line.startswith("- ")]
    assert [line.rsplit("`", 2)[1] for line in lines] == ["tau_gen_ladder", "tau_mem_large_p", "fig13", "atom_psin8"]
    assert "**no verdict (1 seed)**" in lines[-1] and "ψ_p = 32, t = 0.01, 10 seeds" in lines[2]
    heads = [line for line in block.splitlines() if line.startswith("**")]
    assert heads == ["**Agree**", "**Disagree**", "**Inconclusive**", "**No verdict**"]


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).filter(lambda s: "<!--" not in s
                                                                                      and "-->" not in s)
_number = st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.4g}")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_text, _number, st.sampled_from(["agree", "disagree", "inconclusive", "no verdict (2 seeds)"]),
                          _number), max_size=6))
def test_the_block_adds_no_number(rows):
    data = [{"id": f"row{chr(97 + i)}", "claim": f"{c} {x}", "parameters": "", "verdict": v, "evidence": f"at {y}",
             "numbers": {"x": float(x)}} for i, (c, x, v, y) in enumerate(rows)]
    block = results_doc.render(results_doc.parse(data))
    assert set(_tokens(block)) <= set(_tokens(json.dumps(data, ensure_ascii=False)))
    assert sum(line.startswith("- ") for line in block.splitlines()) == len(rows)


def test_the_command_writes_the_block_and_check_fails_on_a_tampered_one(tmp_path, capsys):
    args = _write(tmp_path)
    assert results_doc.main(args + ["--check"]) == 1                       # the committed block is stale
    assert results_doc.main(args) == 0
    doc = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert doc.startswith("# Results\n\nprose 1.23\n\n") and doc.endswith("more prose 4.56\n")
    assert "1.268 [1.155, 1.380]" in doc
    assert results_doc.main(args + ["--check"]) == 0
    assert results_doc.main(args) == 0 and (tmp_path / "results.md").read_text(encoding="utf-8") == doc   # unchanged
    (tmp_path / "results.md").write_text(doc.replace("1.268 [1.155", "1.27 [1.155"), encoding="utf-8")
    assert results_doc.main(args + ["--check"]) == 1
    err = capsys.readouterr().err
    assert "differs" in err and "\n-- τ_mem ∝ n at p ≫ n" in err and "1.27 [1.155" in err   # the diff names the line
    (tmp_path / "results.md").write_text(doc.replace("more prose 4.56", "more prose 7.89"), encoding="utf-8")
    assert results_doc.main(args + ["--check"]) == 0                       # only the block is generated
    (tmp_path / "results.md").write_text(doc.replace(results_doc.END, ""), encoding="utf-8")
    assert results_doc.main(args + ["--check"]) == 2
    (tmp_path / results_doc.FILENAME).unlink()
    assert results_doc.main(args + ["--check"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("evidence"), "missing key(s) evidence"),
    (lambda r: r.update(verdict="yes"), "verdict must be"),
    (lambda r: r.update(numbers={"x": "1.2"}), "numbers must be"),
    (lambda r: r.update(claim="a <!-- b"), "HTML comment"),
])
def test_bad_rows_are_named(change, message):
    rows = json.loads(json.dumps(ROWS))
    change(rows[1])
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        results_doc.parse(rows)
    assert "row 1" in str(err.value)
    with pytest.raises(ValueError, match="more than once"):
        results_doc.parse(ROWS + ROWS[:1])
