from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def helpdesk(root: Path) -> Path:
    return root / "policies" / "helpdesk"
