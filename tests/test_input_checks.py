"""Issue 14: every entry point that takes rule text or a path answers with diagnostics
(or QruleError), never another exception, whatever the text, the bytes or what an
include names on disk. One test per way the OS can refuse a file."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

import qrules
from qrules.errors import QruleError
from qrules.semantics import loader

unix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices, symlinks")


def codes(source, filename="x.qrule", **kwargs) -> list[str]:
    return [d.code for d in qrules.check(source, filename, **kwargs)]


@contextmanager
def no_hang(seconds: int = 10):
    """A blocking open or read would hang the suite; fail instead."""
    def fail(signum, frame):
        raise AssertionError(f"no answer in {seconds}s")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- the text itself: the same checks whether it arrives as str or bytes -------------

def test_nul_in_an_include_path_is_qr101_not_a_value_error():
    # The case: pathlib raised "ValueError: embedded null byte".
    assert codes('include "a\0b"\n') == ["QR101"]
    assert codes(b'include "a\0b"\n') == ["QR101"]
    with pytest.raises(QruleError) as info:
        qrules.load_text('include "a\0b"\n')
    assert [d.code for d in info.value.diagnostics] == ["QR101"]
    with pytest.raises(QruleError):
        qrules.parse('include "a\0b"\n')


def test_str_and_bytes_get_the_same_nul_diagnostic():
    text = 'ruleset r version "1.0"\nrule relu: relu : none\0\n'
    from_str, from_bytes = qrules.check(text), qrules.check(text.encode())
    assert [(d.code, d.span.line, d.span.col) for d in from_str] == \
        [(d.code, d.span.line, d.span.col) for d in from_bytes] == [("QR101", 2, 23)]


def test_lone_surrogate_in_text_is_qr102():
    # It cannot be encoded as a path (UnicodeEncodeError from pathlib) or printed.
    assert codes('include "\ud800.qrule"\n') == ["QR102"]
    assert codes("rule r: relu : none # \udcff\n") == ["QR102"]


# --- what an include names -------------------------------------------------------------

def test_include_name_too_long_for_the_file_system(tmp_path):
    root = tmp_path / "root.qrule"
    root.write_text(f'include "{"x" * 300}.qrule"\nrule r: relu : none\n')
    assert "QR109" in codes(root)
    assert "QR213" in codes(f"include {'x' * 300}\n")  # a built-in name, too long
    deep = "/".join(["y" * 200] * 15)
    root.write_text(f'include "{deep}"\nrule r: relu : none\n')
    assert {"QR109", "QR213"} & set(codes(root))


@unix_only
def test_include_through_a_symlink_loop(tmp_path):
    (tmp_path / "a.qrule").symlink_to("b.qrule")
    (tmp_path / "b.qrule").symlink_to("a.qrule")
    root = tmp_path / "root.qrule"
    root.write_text('include "a.qrule"\nrule r: relu : none\n')
    [found] = [d for d in qrules.check(root) if d.code == "QR213"]
    assert found.span.line == 1


@unix_only
def test_root_file_that_is_a_symlink_loop_or_unnameable(tmp_path):
    (tmp_path / "a.qrule").symlink_to("a.qrule")
    assert codes(tmp_path / "a.qrule") == ["QR109"]
    assert codes(Path("a\0b.qrule")) == ["QR109"]
    with pytest.raises(FileNotFoundError):
        qrules.load(tmp_path / "a.qrule")
    with pytest.raises(FileNotFoundError):
        qrules.load("y" * 300 + ".qrule")
    with pytest.raises(FileNotFoundError):
        qrules.load(str(tmp_path / ("y" * 300 + ".qrule")))


def test_include_of_a_directory(tmp_path):
    (tmp_path / "d.qrule").mkdir()
    root = tmp_path / "root.qrule"
    root.write_text('include "d.qrule"\nrule r: relu : none\n')
    assert "QR213" in codes(root)
    assert codes(tmp_path / "d.qrule") == ["QR109"]


@unix_only
def test_fifo_is_refused_before_it_is_opened(tmp_path):
    os.mkfifo(tmp_path / "f.qrule")
    root = tmp_path / "root.qrule"
    root.write_text('include "f.qrule"\nrule r: relu : none\n')
    with no_hang():
        assert "QR213" in codes(root)
        assert codes(tmp_path / "f.qrule") == ["QR109"]


@unix_only
def test_devices_are_refused_even_inside_an_include_root():
    with no_hang():
        assert "QR213" in codes('include "/dev/zero"\nrule r: relu : none\n',
                                include_roots=["/dev"])
        assert codes(Path("/dev/zero")) == ["QR109"]


@unix_only
def test_a_file_swapped_for_a_fifo_after_the_check_is_refused(tmp_path, monkeypatch):
    fifo, regular = tmp_path / "f.qrule", tmp_path / "r.qrule"
    os.mkfifo(fifo)
    regular.write_text("rule r: relu : none\n")
    real_stat = os.stat
    monkeypatch.setattr(loader.os, "stat", lambda path, *a, **k: real_stat(regular))
    with no_hang(), pytest.raises(OSError):
        loader.read_source(fifo)


def test_a_file_that_disappears_before_it_is_read(tmp_path, monkeypatch):
    gone = tmp_path / "gone.qrule"
    gone.write_text("rule g: relu : none\n")
    root = tmp_path / "root.qrule"
    root.write_text('include "gone.qrule"\nrule r: relu : none\n')
    real_open = os.open

    def open_after_delete(path, *args, **kwargs):
        if Path(path).name == "gone.qrule":
            Path(path).unlink(missing_ok=True)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(loader.os, "open", open_after_delete)
    assert "QR213" in codes(root)
    gone.write_text("rule g: relu : none\n")
    assert codes(gone) == ["QR109"]


def test_each_file_is_read_once(tmp_path, monkeypatch):
    # One read per file: what is checked and what diagnostics quote are the same bytes.
    (tmp_path / "a.qrule").write_text("rule a: relu : none\n")
    root = tmp_path / "root.qrule"
    root.write_text('include "a.qrule"\ninclude "a.qrule"\nrule r: relu : none\n')
    opened = []
    real_open = os.open
    monkeypatch.setattr(loader.os, "open",
                        lambda path, *a, **k: opened.append(Path(path).name)
                        or real_open(path, *a, **k))
    qrules.check(root)
    assert sorted(n for n in opened if n != "_prelude.qrule") == ["a.qrule", "root.qrule"]


def test_an_include_chain_of_a_thousand_files(tmp_path):
    # The include walk is iterative: no RecursionError however deep the chain.
    for i in range(1000):
        nxt = f'include "f{i + 1}.qrule"\n' if i < 999 else ""
        (tmp_path / f"f{i}.qrule").write_text(f"{nxt}rule r{i}: relu : none\n")
    found = qrules.check(tmp_path / "f0.qrule")
    assert not [d for d in found if d.code in ("QR109", "QR213", "QR214")]
    loaded = loader.load(root=tmp_path / "f0.qrule")
    assert [u.name.rsplit("/", 1)[-1] for u in loaded.units[1:4]] == \
        ["f0.qrule", "f1.qrule", "f2.qrule"]


def test_a_cycle_at_the_end_of_a_deep_chain(tmp_path):
    for i in range(300):
        (tmp_path / f"f{i}.qrule").write_text(f'include "f{(i + 1) % 300}.qrule"\n'
                                               f"rule r{i}: relu : none\n")
    assert codes(tmp_path / "f0.qrule").count("QR214") == 1


# --- numbers no float can hold (found by scripts/fuzz.py) -----------------------------

HUGE = str(10**400)


@pytest.mark.parametrize("spec, code", [
    (f"affine(int8, 0..{HUGE})", "QR303"),            # OverflowError: int too large
    (f"affine(int8, -{HUGE}..{HUGE})", "QR303"),
    (f"fixed(int8, scale={HUGE}, zero_point=0)", "QR306"),
    (f"fixed(int8, scale=1.0, zero_point={HUGE})", "QR306"),
    ("fixed(int8, scale=1.0, zero_point=1e999)", "QR306"),   # int(inf)
    ("fixed(int8, scale=1.0, zero_point=-1e999)", "QR306"),
    ("fixed(int8, scale=1.0, zero_point=1e999-1e999)", "QR306"),  # int(nan)
    ("fixed(int8, scale=1e999-1e999, zero_point=0)", "QR306"),
])
def test_numbers_past_float_range_are_diagnostics(spec, code):
    text = f'ruleset r version "1.0"\nspec s = {spec}\nrule r: relu : {{ input: s }}\n'
    assert codes(text) == [code]
    with pytest.raises(QruleError):
        qrules.load_text(text)
