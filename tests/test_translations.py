"""Every page text has its Russian translation, and the catalogues compile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from wallet.loyalty.clubs import CATEGORIES
from wallet.web.wording import CATEGORY_NAMES

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "wallet" / "translations"


def _extract(tmp_path: Path) -> set[object]:
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F",
                    str(TRANSLATIONS / "babel.cfg"), "-k", "_l", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as fh:
        return {message.id for message in read_po(fh) if message.id}


def test_every_page_text_is_translated_into_russian(tmp_path: Path) -> None:
    with (TRANSLATIONS / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalogue = read_po(fh)
    translated = {
        m.id for m in catalogue
        if m.id and "fuzzy" not in m.flags and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = sorted(map(str, _extract(tmp_path) - translated))
    assert not missing, "translate these in ru/LC_MESSAGES/messages.po (README, Pages): " + "; ".join(missing)


def test_every_club_category_has_a_page_name() -> None:
    assert set(CATEGORY_NAMES) == set(CATEGORIES)
