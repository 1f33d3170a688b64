"""The encrypted backup archive: round trips, and a distinct refusal for every kind of damage.

No database: archives are files. Most tests use a small chunk size so that an archive of a
few dozen KiB has a dozen chunks to cut, swap and damage.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import random
import subprocess  # nosec B404
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rdv.continuity import archive
from rdv.continuity.archive import (
    ArchiveError,
    BackupKey,
    ChecksumMismatch,
    CorruptArchive,
    TruncatedArchive,
    WrongKey,
    checksum_path,
    parse_keys,
    read_archive,
    read_header,
    verify_checksum,
    write_archive,
)
from tests.conftest import NOW

SMALL_CHUNK = 4096
TAG = 16
MARKER = b"RDV-PLAINTEXT-MARKER-7f3a"


def new_key(key_id: str = "k1") -> BackupKey:
    return BackupKey(key_id, os.urandom(32))


def key_entry(key_id: str, secret: bytes) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(secret).decode()}"


@dataclass
class Made:
    archive: Path
    key: BackupKey
    contents: dict[str, bytes]
    into: Path


def make(
    tmp_path: Path,
    contents: dict[str, bytes],
    *,
    key: BackupKey | None = None,
    chunk_size: int = SMALL_CHUNK,
    name: str = "rdv-20261123T130000Z.rdvbak",
) -> Made:
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    members = []
    for member, data in contents.items():
        (source / member).write_bytes(data)
        members.append((member, source / member))
    key = key or new_key()
    dest = tmp_path / name
    write_archive(dest, members, key, chunk_size=chunk_size)
    into = tmp_path / f"into-{name}"
    into.mkdir()
    return Made(dest, key, contents, into)


@pytest.fixture
def made(tmp_path: Path) -> Made:
    """An archive of ~12 small chunks: a manifest, a dump with a marker inside, an empty file."""
    dump = os.urandom(20_000) + MARKER + os.urandom(20_000)
    return make(tmp_path, {"manifest.json": b'{"tables": 3}', "db.dump": dump, "empty.txt": b""})


def frames(path: Path) -> list[tuple[int, int, int]]:
    """(offset, final flag, ciphertext length) of each chunk, read as the module doc says."""
    data = path.read_bytes()
    header_length = int.from_bytes(data[8:12], "big")
    offset = 12 + header_length + 32
    found = []
    while offset < len(data):
        length = int.from_bytes(data[offset + 1 : offset + 5], "big")
        found.append((offset, data[offset], length))
        offset += 5 + length
    return found


def rewrite(path: Path, change: Callable[[bytes], bytes]) -> None:
    """Damage the archive and write a sidecar that matches the damage (a consistent forgery)."""
    path.write_bytes(change(path.read_bytes()))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    checksum_path(path).write_text(f"{digest}  {path.name}\n")


def flipped(offset: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def cut_at(length: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:length]


def refused(made: Made, error: type[ArchiveError], keys: list[BackupKey] | None = None) -> str:
    """The message of the exact error reading `made` raises; nothing may be left behind."""
    with pytest.raises(ArchiveError) as caught:
        read_archive(made.archive, keys or [made.key], made.into)
    assert type(caught.value) is error, caught.value
    assert list(made.into.iterdir()) == []
    return str(caught.value)


# --- Round trips --------------------------------------------------------------------


def test_round_trip_restores_every_member_byte_for_byte(tmp_path: Path) -> None:
    contents = {
        "manifest.json": b'{"tables": {"patients_patient": 3}}',
        "database.dump": os.urandom(2 * archive.CHUNK_SIZE + 12_345),
        "empty.dump": b"",
    }
    made = make(tmp_path, contents, chunk_size=archive.CHUNK_SIZE)

    extracted = read_archive(made.archive, [made.key], made.into)

    assert set(extracted) == set(contents)
    for name, data in contents.items():
        assert extracted[name] == made.into / name
        assert extracted[name].read_bytes() == data
        assert extracted[name].stat().st_mode & 0o777 == 0o600
    assert len(frames(made.archive)) >= 3


def test_the_sidecar_is_what_sha256sum_checks(tmp_path: Path) -> None:
    source = tmp_path / "manifest.json"
    source.write_bytes(b"{}")
    dest = tmp_path / "rdv-20261123T130000Z.rdvbak"

    digest = write_archive(dest, [("manifest.json", source)], new_key())

    assert digest == hashlib.sha256(dest.read_bytes()).hexdigest() == verify_checksum(dest)
    assert checksum_path(dest).read_text() == f"{digest}  {dest.name}\n"
    checked = subprocess.run(  # noqa: S603
        ["/usr/bin/sha256sum", "--check", "--strict", checksum_path(dest).name],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Only the archive and its sidecar: no temporary file is left beside them.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [source.name, dest.name, checksum_path(dest).name]
    )


def test_the_header_is_readable_without_a_key(made: Made) -> None:
    header = read_header(made.archive)

    assert header["key_id"] == "k1"
    assert header["format"] == "rdv-backup"
    assert header["version"] == 1
    assert header["chunk_size"] == SMALL_CHUNK
    assert datetime.fromisoformat(header["created_at"]) == NOW.astimezone(UTC)
    assert len(base64.urlsafe_b64decode(header["salt"] + "=")) == 32


def test_an_older_key_still_in_the_list_decrypts(tmp_path: Path) -> None:
    old = new_key("2025")
    made = make(tmp_path, {"manifest.json": b"{}"}, key=old)

    extracted = read_archive(made.archive, [new_key("2026"), old], made.into)

    assert extracted["manifest.json"].read_bytes() == b"{}"


def test_the_archive_never_contains_a_members_plaintext(made: Made) -> None:
    dump = made.contents["db.dump"]
    # Random bytes around the marker make gzip store it as is: only encryption hides it.
    assert MARKER in gzip.compress(dump, compresslevel=archive.COMPRESS_LEVEL)

    data = made.archive.read_bytes()

    assert MARKER not in data
    assert b"manifest.json" not in data
    assert made.key.secret not in data


def test_two_archives_of_the_same_data_differ(tmp_path: Path) -> None:
    key = new_key()
    contents = {"manifest.json": b'{"tables": 3}'}
    first = make(tmp_path, contents, key=key, name="a.rdvbak")
    second = make(tmp_path, contents, key=key, name="b.rdvbak")

    assert read_header(first.archive)["salt"] != read_header(second.archive)["salt"]
    first_chunk, second_chunk = (
        m.archive.read_bytes()[frames(m.archive)[0][0] :] for m in (first, second)
    )
    assert first_chunk != second_chunk
    assert read_archive(second.archive, [key], second.into)["manifest.json"].read_bytes() == (
        b'{"tables": 3}'
    )


sizes_near_chunk_boundaries = st.integers(min_value=0, max_value=4).flatmap(
    lambda chunks: st.integers(min_value=-3, max_value=3).map(
        lambda delta: max(0, chunks * 256 + delta)
    )
)


@settings(max_examples=25)
@given(sizes=st.lists(sizes_near_chunk_boundaries, min_size=1, max_size=3), seed=st.integers())
def test_round_trip_over_member_sizes_around_chunk_boundaries(sizes: list[int], seed: int) -> None:
    rng = random.Random(seed)
    contents = {f"member-{i}.bin": rng.randbytes(size) for i, size in enumerate(sizes)}
    with tempfile.TemporaryDirectory() as scratch:
        made = make(Path(scratch), contents, chunk_size=256)

        extracted = read_archive(made.archive, [made.key], made.into)

        assert {name: path.read_bytes() for name, path in extracted.items()} == contents


@settings(max_examples=25)
@given(
    size=st.integers(min_value=0, max_value=4).flatmap(
        lambda chunks: st.integers(min_value=-2, max_value=2).map(
            lambda delta: max(0, chunks * 64 + delta)
        )
    )
)
@example(size=0)
@example(size=128)  # exactly two chunks: the final chunk is empty
def test_the_chunk_layer_round_trips_and_ends_with_a_short_final_chunk(size: int) -> None:
    # The compressed stream's length cannot be chosen, so the chunking is tested directly.
    plaintext = random.Random(size).randbytes(size)
    aead, digest = AESGCM(os.urandom(32)), hashlib.sha256(b"header").digest()
    sealed = io.BytesIO()
    writer = archive._EncryptingWriter(archive._HashingSink(sealed), aead, digest, 64)
    writer.write(plaintext)
    writer.finish()

    sealed.seek(0)
    reader = archive._DecryptingReader(sealed, aead, digest, 64, "test")

    assert reader.read() == plaintext
    data = sealed.getvalue()
    assert len(data) == (size // 64 + 1) * (5 + TAG) + size
    full_frame = 5 + 64 + TAG
    assert [data[i * full_frame] for i in range(size // 64)] == [0] * (size // 64)
    assert data[-(size % 64 + TAG) - 5] == 1


# --- Refusals -----------------------------------------------------------------------


def test_a_flipped_byte_with_the_original_sidecar_fails_the_checksum(made: Made) -> None:
    data = bytearray(made.archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    made.archive.write_bytes(bytes(data))

    assert "damaged or incomplete" in refused(made, ChecksumMismatch)


@pytest.mark.parametrize(
    "where",
    [
        "magic",
        "version",
        "header",
        "header checksum",
        "first frame flag",
        "first frame length",
        "middle of a chunk",
        "tag of the final chunk",
    ],
)
def test_a_flipped_byte_with_a_matching_sidecar_is_corruption(made: Made, where: str) -> None:
    chunks = frames(made.archive)
    header_end = chunks[0][0]
    offsets = {
        "magic": 0,
        "version": 7,
        "header": 20,
        "header checksum": header_end - 1,
        "first frame flag": chunks[0][0],
        "first frame length": chunks[0][0] + 1,
        "middle of a chunk": chunks[3][0] + 5 + SMALL_CHUNK // 2,
        "tag of the final chunk": made.archive.stat().st_size - 1,
    }
    rewrite(made.archive, flipped(offsets[where]))

    assert made.archive.name in refused(made, CorruptArchive)


def test_swapped_chunks_fail_authentication(made: Made) -> None:
    (first, _, length), (second, _, _) = frames(made.archive)[1:3]
    size = 5 + length
    rewrite(
        made.archive,
        lambda d: d[:first] + d[second : second + size] + d[first:second] + d[second + size :],
    )

    assert "chunk 1 failed authentication" in refused(made, CorruptArchive)


def test_a_chunk_from_another_archive_under_the_same_key_is_refused(
    made: Made, tmp_path: Path
) -> None:
    other = make(tmp_path, made.contents, key=made.key, name="other.rdvbak")
    start, _, length = frames(made.archive)[2]
    foreign = other.archive.read_bytes()[start : start + 5 + length]
    rewrite(made.archive, lambda d: d[:start] + foreign + d[start + 5 + length :])

    assert "chunk 2 failed authentication" in refused(made, CorruptArchive)


def test_a_rewritten_header_with_its_checksum_fixed_fails_authentication(made: Made) -> None:
    def backdate(data: bytes) -> bytes:
        length = int.from_bytes(data[8:12], "big")
        header = json.loads(data[12 : 12 + length])
        header["created_at"] = "2020-01-01T00:00:00+00:00"
        forged = json.dumps(header).encode()
        return (
            data[:8]
            + len(forged).to_bytes(4, "big")
            + forged
            + hashlib.sha256(forged).digest()
            + data[12 + length + 32 :]
        )

    rewrite(made.archive, backdate)

    assert read_header(made.archive)["created_at"] == "2020-01-01T00:00:00+00:00"
    assert "chunk 0 failed authentication" in refused(made, CorruptArchive)


def test_cutting_chunks_off_and_flagging_the_last_one_final_is_refused(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, _, length = frames(made.archive)[5]
    rewrite(made.archive, lambda d: d[:start] + b"\x01" + d[start + 1 : start + 5 + length])

    assert "frame of chunk 5 is damaged" in refused(made, CorruptArchive)
    # Even past the frame-length rule, the flag is authenticated with the chunk.
    monkeypatch.setattr(archive._DecryptingReader, "_plausible", lambda *_: True)
    assert "chunk 5 failed authentication" in refused(made, CorruptArchive)


def test_data_after_the_final_chunk_is_refused(made: Made) -> None:
    rewrite(made.archive, lambda d: d + b"\0")

    assert "after its final chunk" in refused(made, CorruptArchive)


def test_an_archive_cut_at_any_chunk_boundary_is_truncated(made: Made) -> None:
    original = made.archive.read_bytes()
    boundaries = [offset for offset, _, _ in frames(made.archive)]
    assert len(boundaries) >= 10

    for boundary in boundaries:
        made.archive.write_bytes(original)
        rewrite(made.archive, cut_at(boundary))

        assert "before its final chunk" in refused(made, TruncatedArchive)


@pytest.mark.parametrize("where", ["inside the header", "inside a frame", "inside a chunk"])
def test_an_archive_cut_mid_chunk_is_truncated(made: Made, where: str) -> None:
    chunks = frames(made.archive)
    cut = {
        "inside the header": 20,
        "inside a frame": chunks[4][0] + 3,
        "inside a chunk": chunks[4][0] + 5 + 100,
    }[where]
    rewrite(made.archive, cut_at(cut))

    refused(made, TruncatedArchive)


def test_members_extracted_before_a_failure_are_deleted(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = made.into / "already-here.txt"
    keep.write_text("not ours")
    started: list[str] = []
    finished: list[str] = []
    original = archive._extract_member

    def spy(tar: Any, member: Any, into: Path, extracted: dict[str, Path], name: str) -> None:
        started.append(member.name)
        original(tar, member, into, extracted, name)
        finished.append(member.name)

    monkeypatch.setattr(archive, "_extract_member", spy)
    # Without the final chunk, the end of db.dump is missing: the stream stops inside it.
    rewrite(made.archive, cut_at(frames(made.archive)[-1][0]))

    with pytest.raises(TruncatedArchive):
        read_archive(made.archive, [made.key], made.into)

    assert started == ["manifest.json", "db.dump"]
    assert finished == ["manifest.json"]
    assert list(made.into.iterdir()) == [keep]
    assert keep.read_text() == "not ours"


def test_a_member_never_overwrites_a_file_already_there(made: Made) -> None:
    (made.into / "db.dump").write_text("precious")

    with pytest.raises(ArchiveError, match="already exists"):
        read_archive(made.archive, [made.key], made.into)

    assert [p.name for p in made.into.iterdir()] == ["db.dump"]
    assert (made.into / "db.dump").read_text() == "precious"


def test_a_wrong_key_with_the_same_id_is_told_apart_from_corruption(made: Made) -> None:
    impostor = new_key("k1")

    message = refused(made, WrongKey, keys=[impostor])

    assert "'k1'" in message
    assert "same id, different secret" in message


def test_an_unknown_key_id_is_a_wrong_key(made: Made) -> None:
    message = refused(made, WrongKey, keys=[new_key("k2"), new_key("k3")])

    assert "'k1'" in message
    assert "'k2', 'k3'" in message


def test_a_missing_sidecar_fails_the_checksum(made: Made) -> None:
    checksum_path(made.archive).unlink()

    assert "is missing" in refused(made, ChecksumMismatch)


@pytest.mark.parametrize(
    "sidecar",
    ["", "not a checksum\n", "abc  rdv-20261123T130000Z.rdvbak\n", "{digest}  another.rdvbak\n"],
)
def test_a_malformed_sidecar_fails_the_checksum(made: Made, sidecar: str) -> None:
    digest = hashlib.sha256(made.archive.read_bytes()).hexdigest()
    checksum_path(made.archive).write_text(sidecar.format(digest=digest))

    refused(made, ChecksumMismatch)


def test_a_missing_archive_or_directory_is_reported(made: Made, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        read_archive(tmp_path / "nowhere.rdvbak", [made.key], made.into)
    with pytest.raises(ArchiveError, match="not a directory"):
        read_archive(made.archive, [made.key], tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", TruncatedArchive),
        (b"RDVBAK", TruncatedArchive),
        (b"PGDMP\x01\x0e\x00 a pg_dump file", CorruptArchive),
        (b"RDVBAK\x00\x02" + bytes(40), CorruptArchive),
    ],
)
def test_read_header_refuses_what_is_not_an_archive(
    tmp_path: Path, content: bytes, error: type[ArchiveError]
) -> None:
    path = tmp_path / "x.rdvbak"
    path.write_bytes(content)

    with pytest.raises(error):
        read_header(path)


def test_authenticated_members_with_a_path_are_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key holder (or a bug) could write any name: reading must not trust the writer's checks.
    monkeypatch.setattr(archive, "_checked_members", list)
    made = make(tmp_path, {"evil.txt": b"x"})
    key, source = made.key, tmp_path / "source" / "evil.txt"
    write_archive(made.archive, [("../evil.txt", source)], key, chunk_size=SMALL_CHUNK)

    message = refused(made, CorruptArchive)

    assert "'../evil.txt' is not an acceptable archive member name" in message
    assert not (tmp_path / "evil.txt").exists()


def test_an_archive_with_two_members_of_the_same_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "_checked_members", list)
    made = make(tmp_path, {"db.dump": b"x"})
    source = tmp_path / "source" / "db.dump"
    write_archive(made.archive, [("db.dump", source)] * 2, made.key, chunk_size=SMALL_CHUNK)

    assert "two members named 'db.dump'" in refused(made, CorruptArchive)


# --- Writing refusals ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "/etc/passwd", ".hidden", "-rf"])
def test_write_refuses_a_member_name_that_is_not_a_plain_file_name(
    tmp_path: Path, name: str
) -> None:
    source = tmp_path / "data"
    source.write_bytes(b"x")

    with pytest.raises(ArchiveError, match="not an acceptable archive member name"):
        write_archive(tmp_path / "a.rdvbak", [(name, source)], new_key())

    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_write_refuses_duplicate_names_and_non_files(tmp_path: Path) -> None:
    source = tmp_path / "data"
    source.write_bytes(b"x")
    dest = tmp_path / "a.rdvbak"

    with pytest.raises(ArchiveError, match="Two archive members"):
        write_archive(dest, [("a", source), ("a", source)], new_key())
    with pytest.raises(ArchiveError, match="not a regular file"):
        write_archive(dest, [("a", tmp_path)], new_key())
    assert not dest.exists()


def test_a_failed_write_leaves_the_previous_archive_untouched(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in made.archive.parent.iterdir() if p.is_file()}
    calls: list[str] = []
    original = archive._add_member

    def disk_full_on_second_member(tar: Any, name: str, path: Path) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        original(tar, name, path)

    monkeypatch.setattr(archive, "_add_member", disk_full_on_second_member)
    members = [(name, made.archive.parent / "source" / name) for name in made.contents]

    with pytest.raises(ArchiveError, match="No space left on device"):
        write_archive(made.archive, members, made.key, chunk_size=SMALL_CHUNK)

    after = {p.name: p.read_bytes() for p in made.archive.parent.iterdir() if p.is_file()}
    assert after == before
    assert (
        read_archive(made.archive, [made.key], made.into)["db.dump"].read_bytes()
        == (made.contents["db.dump"])
    )


def test_an_archive_that_could_not_be_put_in_place_leaves_no_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "manifest.json"
    source.write_bytes(b"{}")
    real_fsync = os.fsync
    calls: list[int] = []

    def failing_on_the_archive(fd: int) -> None:
        # 1: the checksum file, 2: its directory, 3: the archive itself.
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_on_the_archive)

    with pytest.raises(ArchiveError, match="Input/output error"):
        write_archive(tmp_path / "a.rdvbak", [("manifest.json", source)], new_key())

    assert len(calls) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


# --- Keys ---------------------------------------------------------------------------


def test_parse_keys_reads_every_entry_in_order() -> None:
    first, second = os.urandom(32), os.urandom(32)

    keys = parse_keys([key_entry("2026", first), f" {key_entry('2025', second)} "])

    assert keys == [BackupKey("2026", first), BackupKey("2025", second)]
    assert first.hex() not in repr(keys)
    assert str(first) not in repr(keys)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "is empty"),
        (["no-colon"], "entry 1 must be"),
        (["bad.id:" + "A" * 43], "entry 1 must be"),
        (["k1:not base64!"], "'k1' must be 32 bytes"),
        ([key_entry("k1", bytes(16))], "'k1' must be 32 bytes"),
        ([key_entry("k1", bytes(32)), key_entry("k1", bytes(32))], "'k1' twice"),
    ],
)
def test_parse_keys_refuses_malformed_entries(entries: list[str], message: str) -> None:
    with pytest.raises(ArchiveError, match=message) as caught:
        parse_keys(entries)

    assert "AAAA" not in str(caught.value)
