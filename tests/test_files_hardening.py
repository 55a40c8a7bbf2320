"""Hostile files at import (issue 11, item 14): decompression bombs in
images and zips, links out of an import folder, relative folders. Each is a
one-line InvalidInput that changes nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from assay.errors import InvalidInput
from factories import blob_files, snapshot


def png(w: int = 8, h: int = 8, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (seed % 256, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def png_claiming(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w × h pixels (a decompression bomb's header)."""
    data = bytearray(png())
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def folder_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    d = tmp_path / "imgs"
    d.mkdir(exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def refused(ws, path, *match: str, **kw) -> str:
    before = snapshot(ws)
    with pytest.raises(InvalidInput) as e:
        ws.import_file("pics", path, create=True, **kw)
    msg = e.value.message
    assert "\n" not in msg
    for m in match:
        assert m in msg, msg
    assert snapshot(ws) == before  # nothing changed: no dataset, no import, no item
    assert blob_files(ws) == set()
    return msg


# ---------------------------------------------------------------- images


def test_image_over_the_pixel_limit_is_refused_by_name(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_MAX_IMAGE_PIXELS", "10000")
    d = folder_with(tmp_path, {"ok.png": png(50, 50), "big.png": png(120, 100)})
    refused(ws, d, "big.png", "120×100", "12,000 pixels", "10,000", "ASSAY_MAX_IMAGE_PIXELS")
    monkeypatch.setenv("ASSAY_MAX_IMAGE_PIXELS", "20000")  # the setting raises the bar
    assert ws.import_file("pics", d, create=True)["added"] == 2


def test_bomb_header_is_a_clear_error_not_a_pillow_traceback(ws, tmp_path):
    # 100 000 × 100 000 claimed in a 70-byte file: Pillow itself raises
    # DecompressionBombError (not an OSError) on open.
    d = folder_with(tmp_path, {"a.png": png(), "bomb.png": png_claiming(100_000, 100_000)})
    refused(ws, d, "bomb.png", "more pixels than the limit", "ASSAY_MAX_IMAGE_PIXELS")


def test_bomb_in_a_zip_is_refused_too(ws, tmp_path):
    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.png", png())
        zf.writestr("b.png", png_claiming(30_000, 30_000))
    refused(ws, z, "b.png", "ASSAY_MAX_IMAGE_PIXELS")


def test_image_file_over_the_size_limit_is_refused(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_MAX_IMAGE_MB", "0.01")  # 10 KiB
    noise = Image.frombytes("RGB", (100, 100), os.urandom(30000))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    d = folder_with(tmp_path, {"noise.png": buf.getvalue()})
    refused(ws, d, "noise.png", "ASSAY_MAX_IMAGE_MB")


def test_bad_limit_setting_is_one_line(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_MAX_IMAGE_PIXELS", "lots")
    refused(ws, folder_with(tmp_path, {"a.png": png()}), "ASSAY_MAX_IMAGE_PIXELS must be a positive number")


# ---------------------------------------------------------------- zips


def test_zip_with_too_many_entries_is_refused_before_unpacking(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_MAX_ZIP_MEMBERS", "3")
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(5):
            zf.writestr(f"{i}.png", png(seed=i))
    refused(ws, z, "5 entries", "ASSAY_MAX_ZIP_MEMBERS")


def test_zip_member_with_a_bomb_ratio_is_refused(ws, tmp_path):
    z = tmp_path / "ratio.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", png())
        zf.writestr("b.png", b"\0" * (20 << 20))  # 20 MiB of zeros packs to ~20 KiB
    assert z.stat().st_size < 100_000
    refused(ws, z, "b.png", "times larger", "ASSAY_MAX_ZIP_RATIO")


def test_zip_declared_total_over_the_limit_is_refused(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_MAX_ZIP_MB", "1")
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", os.urandom(600_000))
    refused(ws, z, "ASSAY_MAX_ZIP_MB")


def test_zip_member_larger_than_its_header_says_is_refused(ws, tmp_path):
    """The central directory understates a member's size: what is unpacked is
    checked, not what the header claims."""
    z = tmp_path / "liar.zip"
    real = png(40, 40)
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.png", real)
    raw = bytearray(z.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        at = raw.index(sig)
        raw[at + off:at + off + 4] = struct.pack("<I", 10)  # uncompressed size: 10 bytes
    z.write_bytes(bytes(raw))
    refused(ws, z, "a.png")


# ---------------------------------------------------------------- folders


def test_link_out_of_the_import_folder_is_refused(ws, tmp_path):
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "private.png").write_bytes(png(seed=9))
    d = folder_with(tmp_path, {"a.png": png()})
    (d / "b.png").symlink_to(secret / "private.png")
    refused(ws, d, "b.png", "outside")
    (d / "b.png").unlink()
    (d / "sub").symlink_to(secret, target_is_directory=True)  # a linked folder, too
    refused(ws, d, "sub", "outside")


def test_link_inside_the_folder_is_fine(ws, tmp_path):
    d = folder_with(tmp_path, {"a.png": png(), "b.png": png(seed=3)})
    (d / "c.png").symlink_to(d / "b.png")
    r = ws.import_file("pics", d, create=True)
    assert r["added"] == 2 and r["skipped"] == 1  # c.png is b.png's content


def test_relative_image_folder_works(ws, tmp_path, monkeypatch):
    folder_with(tmp_path, {"a.png": png(), "b.png": png(seed=1)})
    monkeypatch.chdir(tmp_path)
    r = ws.import_file("pics", "imgs", create=True)
    assert r["added"] == 2
    items, _ = ws.list_items("pics")
    assert {i["source_uri"] for i in items} == {(tmp_path / "imgs" / n).as_uri() for n in ("a.png", "b.png")}
