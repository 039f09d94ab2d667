"""The curated API: ``rfdiff.__all__`` is what README's "public API" paragraph documents, no more, no less."""
import re
from pathlib import Path

import rfdiff

README = Path(__file__).resolve().parents[2] / "README.md"


def test_all_is_the_documented_api():
    text = README.read_text()
    para = text[text.index("The public API:"):]
    para = para[: para.index("the modules")]
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", para)) - {"Client"}
    exported = set(rfdiff.__all__) - {"__version__"}
    assert documented == exported, (sorted(documented - exported), sorted(exported - documented))
    assert all(hasattr(rfdiff, name) for name in rfdiff.__all__)
