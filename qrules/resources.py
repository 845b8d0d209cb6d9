"""Where the grammar and the built-in rulesets live, in a wheel or in a checkout.

A wheel carries them inside the package (``qrules/_grammar``, ``qrules/_rulesets``,
mapped by ``pyproject.toml``); a source checkout has them at the top level.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"qrules data not found; looked in {', '.join(map(str, candidates))}")


def grammar_path() -> Path:
    return _first_existing(_PACKAGE / "_grammar" / "qrule.lark",
                           _PACKAGE.parent / "grammar" / "qrule.lark")


def rulesets_dir() -> Path:
    return _first_existing(_PACKAGE / "_rulesets", _PACKAGE.parent / "rulesets")


def builtin_ruleset_names() -> list[str]:
    return sorted(p.stem for p in rulesets_dir().glob("*.qrule") if not p.stem.startswith("_"))


def builtin_ruleset_path(name: str) -> Path | None:
    path = rulesets_dir() / f"{name}.qrule"
    try:
        return path if path.is_file() else None
    except OSError:  # a name too long for the file system names no built-in ruleset
        return None
