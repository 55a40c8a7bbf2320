"""Reading zips that people upload, bounded: the member list is checked
against the import limits (:class:`assay.formats.ingest.Limits`: entry count,
declared sizes, compression ratio, unsafe paths) before anything is
unpacked, and every read counts the bytes actually unpacked. Used by the
image import and by the gold upload of zipped label folders."""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from assay.errors import InvalidInput


def zip_members(zf: zipfile.ZipFile, name: str, limits: Limits) -> list[zipfile.ZipInfo]:
    """The members of a zip to import, checked against the limits from the
    central directory before anything is unpacked: member count, declared
    unpacked size (each and in all) and each member's compression ratio.
    Stops at the first member over a limit."""
    infos = zf.infolist()
    if len(infos) > limits.zip_members:
        raise InvalidInput(f"{name} has {len(infos):,} entries, more than the limit of "
                           f"{limits.zip_members:,} (ASSAY_MAX_ZIP_MEMBERS)")
    out, total = [], 0
    for info in infos:
        if info.is_dir():
            continue
        member = info.filename.replace("\\", "/")
        pp = PurePosixPath(member)
        if member.startswith("/") or ".." in pp.parts or (pp.parts and ":" in pp.parts[0]):
            raise InvalidInput(f"refusing unsafe path {info.filename!r} in {name}")
        if any(part.startswith(".") or part == "__MACOSX" for part in pp.parts):
            continue
        if info.file_size > limits.image_bytes:
            raise InvalidInput(f"{member} in {name} unpacks to {info.file_size:,} bytes, more than the "
                               f"limit of {limits.image_bytes:,} for one file (ASSAY_MAX_IMAGE_MB)")
        if info.file_size > limits.zip_ratio * max(info.compress_size, 1) and info.file_size > 1 << 16:
            raise InvalidInput(f"{member} in {name} unpacks {info.file_size / max(info.compress_size, 1):,.0f} "
                               f"times larger than it is packed (limit {limits.zip_ratio:g}, "
                               "ASSAY_MAX_ZIP_RATIO): refusing a possible zip bomb")
        total += info.file_size
        if total > limits.zip_bytes:
            raise InvalidInput(f"{name} unpacks to more than the limit of {limits.zip_bytes:,} bytes "
                               "(ASSAY_MAX_ZIP_MB)")
        info.filename = member
        out.append(info)
    return out


class ZipReader:
    """Reads members of one zip, counting the bytes actually unpacked: a
    member may not yield more than its header declares, nor the whole zip
    more than ``zip_bytes``, whatever the central directory says."""

    def __init__(self, zf: zipfile.ZipFile, name: str, limits: Limits) -> None:
        self.zf, self.name, self.limits, self.total = zf, name, limits, 0

    def read(self, info: zipfile.ZipInfo) -> bytes:
        cap = min(info.file_size, self.limits.image_bytes)
        try:
            with self.zf.open(info) as fh:
                data = fh.read(cap + 1)
                if len(data) <= cap and fh.read(1):
                    data += b"?"
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError,
                ValueError) as exc:
            raise InvalidInput(f"{info.filename} in {self.name} cannot be unpacked: {exc}") from None
        if len(data) > cap:
            raise InvalidInput(f"{info.filename} in {self.name} unpacks to more bytes than its header "
                               "declares: refusing a malformed or hostile zip")
        self.total += len(data)
        if self.total > self.limits.zip_bytes:
            raise InvalidInput(f"{self.name} unpacks to more than the limit of {self.limits.zip_bytes:,} "
                               "bytes (ASSAY_MAX_ZIP_MB)")
        return data
