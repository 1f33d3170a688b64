"""Encrypted, checksummed backup archives: the file format, writing, and checked reading.

Format version 1 (integers big-endian):

    magic    b"RDVBAK\\0" + version byte 0x01
    header   u32 length N (1..64 KiB), N bytes of UTF-8 JSON, SHA-256 of those N bytes
    chunks   repeated: u8 final flag (0 or 1), u32 length L, L bytes of AES-GCM ciphertext + tag

The JSON header is readable without a key: format "rdv-backup", version 1, key_id, salt
(base64url, 32 random bytes per archive), kdf "HKDF-SHA256", cipher "AES-256-GCM",
chunk_size, compression "gzip", created_at (ISO 8601, UTC) and key_check (base64url).

Keys: HKDF-SHA256(secret, salt, info=b"rdv-backup v1") gives 64 bytes; the first 32 are the
archive's AES-256-GCM key, the last 32 an HMAC key, and key_check = HMAC-SHA256(that key,
b"key-check"). A fresh salt per archive means a fresh key, so the nonce of chunk i can be
4 zero bytes + u64 i. The AAD of chunk i is SHA-256(header JSON) + u64 i + u8 final: a chunk
moved, swapped or taken from another archive fails authentication, and so does a header edit.
Every chunk but the last holds exactly chunk_size bytes of plaintext, the last one fewer
(possibly none), so an archive that stops before a chunk flagged final was cut short.

The plaintext is a gzip (level 3) of a PAX tar stream of regular files whose names match
MEMBER_NAME. `write_archive` also writes "<archive>.sha256" in `sha256sum` format.

What each failure raises (`restore` tells them apart for the operator):
    ChecksumMismatch  sidecar missing, malformed, or not the file's SHA-256
    CorruptArchive    bad magic or header, a chunk failing authentication, data after the end
    TruncatedArchive  the file ends before the final chunk
    WrongKey          no configured key has the archive's key id, or the key check fails
The header carries its own unkeyed SHA-256 so that a damaged header reads as corruption,
not as a wrong key. Messages name files and key ids, never a secret or archive content.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rdv.core import clock

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

MAGIC = b"RDVBAK\0"
VERSION = 1
FORMAT = "rdv-backup"
KEY_BYTES = 32
SALT_BYTES = 32
TAG_BYTES = 16
CHUNK_SIZE = 1024 * 1024
# Bounds on what a header may ask for, so a damaged one cannot make a reader allocate much.
MIN_CHUNK_SIZE = 64
MAX_CHUNK_SIZE = 16 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
# On ~85 MB of dump-like text, level 3 wrote 60 MB/s against 31 MB/s at gzip's default
# level 6, for an archive 5 % larger.
COMPRESS_LEVEL = 3
COPY_BLOCK = 1024 * 1024
MEMBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_HKDF_INFO = b"rdv-backup v1"
_FRAME = 5  # final flag + chunk length
_SIDECAR = re.compile(r"([0-9a-fA-F]{64}) [ *]([^\n]+)\n?")


class ArchiveError(Exception):
    """A backup archive could not be written or read; str() is a sentence for the operator."""


class ChecksumMismatch(ArchiveError):
    """The .sha256 sidecar is missing or malformed, or the file does not match it."""


class CorruptArchive(ArchiveError):
    """The archive is not in the expected format or failed authentication."""


class TruncatedArchive(ArchiveError):
    """The archive ends before its authenticated final chunk."""


class WrongKey(ArchiveError):
    """None of the configured keys is the one the archive was encrypted with."""


@dataclass(frozen=True)
class BackupKey:
    key_id: str
    # repr=False: a key must never end up in a log line or a traceback.
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise ArchiveError("A backup key id is 1 to 32 letters, digits, '-' or '_'.")
        if len(self.secret) != KEY_BYTES:
            raise ArchiveError(f"Backup key {self.key_id!r} must be {KEY_BYTES} bytes.")


def parse_keys(values: Sequence[str]) -> list[BackupKey]:
    """Keys from "key_id:base64url(32 bytes)" entries (the first one encrypts).

    ArchiveError for an empty list or a malformed entry; messages name the entry's
    position or key id, never its secret part.
    """
    if not values:
        raise ArchiveError("BACKUP_ENCRYPTION_KEYS is empty: backups need a key of their own.")
    keys: list[BackupKey] = []
    for position, entry in enumerate(values, start=1):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ArchiveError(
                f"BACKUP_ENCRYPTION_KEYS entry {position} must be 'key_id:base64url-key' "
                "with a key id of letters, digits, '-' or '_'."
            )
        if any(key.key_id == key_id for key in keys):
            raise ArchiveError(f"BACKUP_ENCRYPTION_KEYS has key id {key_id!r} twice.")
        secret = _b64decode(encoded.strip())
        if secret is None or len(secret) != KEY_BYTES:
            raise ArchiveError(
                f"BACKUP_ENCRYPTION_KEYS key {key_id!r} must be {KEY_BYTES} bytes in base64url."
            )
        keys.append(BackupKey(key_id, secret))
    return keys


def checksum_path(archive: Path) -> Path:
    """Where the `sha256sum`-format checksum of `archive` lives."""
    return archive.with_name(archive.name + ".sha256")


# --- Writing ------------------------------------------------------------------------


def write_archive(
    dest: Path,
    members: Sequence[tuple[str, Path]],
    key: BackupKey,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> str:
    """Write `members` into the encrypted archive `dest` and its .sha256; return the SHA-256.

    Both files appear atomically (a temporary file in the same directory, fsync, rename),
    the checksum first: a failure leaves no partial archive, and no archive without its
    checksum. Memory use is bounded by the chunk size, whatever the size of the members.
    """
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ArchiveError(f"The chunk size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes.")
    sources = _checked_members(members)
    salt = os.urandom(SALT_BYTES)
    aead_key, check_key = _derive(key.secret, salt)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "key_id": key.key_id,
        "salt": _b64encode(salt),
        "kdf": "HKDF-SHA256",
        "cipher": "AES-256-GCM",
        "chunk_size": chunk_size,
        "compression": "gzip",
        "created_at": clock.now().isoformat(),
        "key_check": _b64encode(_key_check(check_key)),
    }
    header_json = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    header_digest = hashlib.sha256(header_json).digest()
    sidecar = checksum_path(dest)
    wrote_sidecar = False
    try:
        with _atomic_file(dest) as out:
            sink = _HashingSink(out)
            sink.write(bytes([*MAGIC, VERSION]) + _u32(len(header_json)) + header_json)
            sink.write(header_digest)
            encryptor = _EncryptingWriter(sink, AESGCM(aead_key), header_digest, chunk_size)
            _write_payload(encryptor, sources)
            encryptor.finish()
            # The checksum appears before the archive: a visible archive can always be verified.
            with _atomic_file(sidecar) as checksum:
                checksum.write(f"{sink.hexdigest()}  {dest.name}\n".encode())
            wrote_sidecar = True
    except BaseException as exc:
        if wrote_sidecar:
            sidecar.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArchiveError(
                f"Could not write the backup archive {dest}: {_reason(exc)}."
            ) from exc
        raise
    return sink.hexdigest()


def _checked_members(members: Sequence[tuple[str, Path]]) -> list[tuple[str, Path]]:
    seen: set[str] = set()
    for name, path in members:
        _check_name(name, ArchiveError)
        if name in seen:
            raise ArchiveError(f"Two archive members are named {name!r}.")
        seen.add(name)
        if not path.is_file():
            raise ArchiveError(f"Archive member {name!r}: {path} is not a regular file.")
    return list(members)


def _write_payload(encryptor: _EncryptingWriter, sources: Sequence[tuple[str, Path]]) -> None:
    # mtime=0: the gzip header would otherwise hold the time a second time, outside the tar.
    with (
        gzip.GzipFile(fileobj=encryptor, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in sources:
            _add_member(tar, name, path)


def _add_member(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with path.open("rb") as source:
        # The size is taken now: a file still growing is archived as it was at this point.
        info = tar.gettarinfo(arcname=name, fileobj=source)
        # Owners and modes of the machine that made the backup mean nothing where it is restored.
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o600
        tar.addfile(info, source)


class _HashingSink:
    """The archive file, hashed as it is written (no second read of a multi-GB file)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _EncryptingWriter(io.RawIOBase):
    """A write-only stream that seals its input into framed chunks of `chunk_size` bytes."""

    def __init__(
        self, sink: _HashingSink, aead: AESGCM, header_digest: bytes, chunk_size: int
    ) -> None:
        super().__init__()
        self._sink = sink
        self._aead = aead
        self._header_digest = header_digest
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= self._chunk_size:
            self._seal(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]
        return view.nbytes

    def finish(self) -> None:
        """Seal what is left as the final chunk (possibly empty)."""
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()

    def _seal(self, plaintext: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(
            _nonce(self._index), plaintext, _aad(self._header_digest, self._index, final)
        )
        self._sink.write(bytes([final]) + _u32(len(sealed)) + sealed)
        self._index += 1


@contextlib.contextmanager
def _atomic_file(dest: Path) -> Iterator[IO[bytes]]:
    """A new file that replaces `dest` only once it is completely written and on disk."""
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        temp.replace(dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(dest.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Reading ------------------------------------------------------------------------


def verify_checksum(src: Path) -> str:
    """The SHA-256 of `src` if it matches its .sha256 sidecar; ChecksumMismatch otherwise."""
    if not src.is_file():
        raise ArchiveError(f"The backup archive {src} does not exist.")
    sidecar = checksum_path(src)
    try:
        text = sidecar.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ChecksumMismatch(
            f"{src.name}: the checksum file {sidecar.name} is missing, "
            "so the archive cannot be trusted."
        ) from None
    except (OSError, UnicodeDecodeError):
        raise ChecksumMismatch(
            f"{src.name}: the checksum file {sidecar.name} is unreadable."
        ) from None
    match = _SIDECAR.fullmatch(text)
    if match is None:
        raise ChecksumMismatch(
            f"{src.name}: {sidecar.name} is not a 'sha256sum' line ('<64 hex digits>  <name>')."
        )
    if match[2] != src.name:
        raise ChecksumMismatch(f"{src.name}: {sidecar.name} is the checksum of {match[2]!r}.")
    actual = _file_sha256(src)
    expected = match[1].lower()
    if not hmac.compare_digest(actual, expected):
        raise ChecksumMismatch(
            f"{src.name}: its SHA-256 is {actual} but {sidecar.name} says {expected}; "
            "the archive is damaged or incomplete."
        )
    return actual


def read_header(src: Path) -> dict[str, Any]:
    """The archive's plaintext header (key_id, created_at, ...), checked but not decrypted."""
    with _open(src) as source:
        return _read_preamble(source, src.name)[0]


def read_archive(src: Path, keys: Sequence[BackupKey], into: Path) -> dict[str, Path]:
    """Verify, decrypt and extract every member of `src` into the existing directory `into`.

    Returns member name -> extracted path. Every chunk is authenticated before its
    plaintext is used, and the archive must end with its final chunk and nothing after.
    On any failure, whatever was extracted is deleted before the error is raised; files
    already in `into` are never overwritten.
    """
    verify_checksum(src)
    if not into.is_dir():
        raise ArchiveError(f"Cannot extract {src.name}: {into} is not a directory.")
    extracted: dict[str, Path] = {}
    try:
        with _open(src) as source:
            header, header_digest = _read_preamble(source, src.name)
            aead = AESGCM(_unlock(header, keys, src.name))
            reader = _DecryptingReader(source, aead, header_digest, header["chunk_size"], src.name)
            _extract(reader, into, extracted, src.name)
    except OSError as exc:
        _remove(extracted)
        raise ArchiveError(f"Could not extract {src.name} into {into}: {_reason(exc)}.") from exc
    except BaseException:
        _remove(extracted)
        raise
    return extracted


def _remove(extracted: dict[str, Path]) -> None:
    for path in extracted.values():
        path.unlink(missing_ok=True)


def _unlock(header: dict[str, Any], keys: Sequence[BackupKey], archive: str) -> bytes:
    key_id = header["key_id"]
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        configured = ", ".join(repr(k.key_id) for k in keys) or "none"
        raise WrongKey(
            f"{archive} was encrypted with backup key {key_id!r}, which is not among the "
            f"configured keys ({configured})."
        )
    aead_key, check_key = _derive(key.secret, _b64decode(header["salt"]) or b"")
    if not hmac.compare_digest(_key_check(check_key), _b64decode(header["key_check"]) or b""):
        raise WrongKey(
            f"{archive}: the configured backup key {key_id!r} is not the key this archive "
            "was encrypted with (same id, different secret)."
        )
    return aead_key


def _extract(
    reader: _DecryptingReader, into: Path, extracted: dict[str, Path], archive: str
) -> None:
    try:
        with gzip.GzipFile(fileobj=reader, mode="rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                for member in tar:
                    _extract_member(tar, member, into, extracted, archive)
            # The rest of the gzip stream (its CRC) must be there and right too.
            while gz.read(COPY_BLOCK):
                pass
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        # Authenticated, yet not a tar.gz: made by a key holder, or by a bug.
        raise CorruptArchive(f"{archive} decrypts to an invalid tar.gz stream ({exc}).") from None
    reader.read_to_end()


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    into: Path,
    extracted: dict[str, Path],
    archive: str,
) -> None:
    _check_name(member.name, CorruptArchive)
    if member.name in extracted:
        raise CorruptArchive(f"{archive} holds two members named {member.name!r}.")
    if not member.isreg():
        raise CorruptArchive(f"{archive}: member {member.name!r} is not a regular file.")
    tarfile.data_filter(member, str(into))  # the standard library's own refusal of unsafe members
    target = into / member.name
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ArchiveError(
            f"Cannot extract {archive}: {target} already exists (extract into an empty directory)."
        ) from None
    extracted[member.name] = target
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have content
        raise CorruptArchive(f"{archive}: member {member.name!r} has no content.")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, COPY_BLOCK)


class _DecryptingReader(io.RawIOBase):
    """A read-only stream of the plaintext, one authenticated chunk at a time."""

    def __init__(
        self,
        source: BinaryIO,
        aead: AESGCM,
        header_digest: bytes,
        chunk_size: int,
        archive: str,
    ) -> None:
        super().__init__()
        self._source = source
        self._aead = aead
        self._header_digest = header_digest
        self._chunk_size = chunk_size
        self._archive = archive
        self._plaintext = b""
        self._offset = 0
        self._index = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        while self._offset == len(self._plaintext) and not self._finished:
            self._plaintext, self._offset = self._next_chunk(), 0
        view = memoryview(buffer).cast("B")
        count = min(view.nbytes, len(self._plaintext) - self._offset)
        view[:count] = self._plaintext[self._offset : self._offset + count]
        self._offset += count
        return count

    def read_to_end(self) -> None:
        """Authenticate every remaining chunk, through the final one."""
        while not self._finished:
            self._next_chunk()

    def _next_chunk(self) -> bytes:
        frame = self._source.read(_FRAME)
        if len(frame) < _FRAME:
            raise TruncatedArchive(
                f"{self._archive} ends after chunk {self._index}, before its final chunk: "
                "the archive is incomplete."
            )
        final, length = frame[0], int.from_bytes(frame[1:], "big")
        if not self._plausible(final, length):
            raise CorruptArchive(f"{self._archive}: the frame of chunk {self._index} is damaged.")
        sealed = self._source.read(length)
        if len(sealed) < length:
            raise TruncatedArchive(
                f"{self._archive} ends inside chunk {self._index}: the archive is incomplete."
            )
        try:
            plaintext = self._aead.decrypt(
                _nonce(self._index), sealed, _aad(self._header_digest, self._index, bool(final))
            )
        except InvalidTag:
            raise CorruptArchive(
                f"{self._archive}: chunk {self._index} failed authentication "
                "(the archive is damaged or was altered)."
            ) from None
        self._index += 1
        if final:
            self._finished = True
            if self._source.read(1):
                raise CorruptArchive(f"{self._archive} has data after its final chunk.")
        return plaintext

    def _plausible(self, final: int, length: int) -> bool:
        # Only the final chunk is short, and never full (a full one would not be the last).
        if final == 0:
            return length == self._chunk_size + TAG_BYTES
        return final == 1 and TAG_BYTES <= length < self._chunk_size + TAG_BYTES


def _read_preamble(source: BinaryIO, archive: str) -> tuple[dict[str, Any], bytes]:
    """(header, SHA-256 of its JSON) from the start of an archive; the stream is left at chunk 0."""
    expected_magic = bytes([*MAGIC, VERSION])
    magic = source.read(len(expected_magic))
    if magic != expected_magic:
        if magic[: len(MAGIC)] == MAGIC[: len(magic)] and len(magic) < len(expected_magic):
            raise TruncatedArchive(f"{archive} ends inside its header.")
        if magic[: len(MAGIC)] == MAGIC:
            raise CorruptArchive(
                f"{archive} is in backup format version {magic[-1]}; this version reads {VERSION}."
            )
        raise CorruptArchive(f"{archive} is not an RDV Santé backup archive.")
    length_bytes = source.read(4)
    length = int.from_bytes(length_bytes, "big")
    if len(length_bytes) == 4 and not 0 < length <= MAX_HEADER_BYTES:
        raise CorruptArchive(f"{archive}: the header length is damaged.")
    header_json = source.read(length)
    digest = source.read(32)
    if len(length_bytes) < 4 or len(header_json) < length or len(digest) < 32:
        raise TruncatedArchive(f"{archive} ends inside its header.")
    header_digest = hashlib.sha256(header_json).digest()
    if not hmac.compare_digest(digest, header_digest):
        raise CorruptArchive(f"{archive}: the header is damaged (its checksum does not match).")
    return _parse_header(header_json, archive), header_digest


def _parse_header(header_json: bytes, archive: str) -> dict[str, Any]:
    try:
        header = json.loads(header_json)
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise CorruptArchive(f"{archive}: the header is not a JSON object.")
    problem = _header_problem(header)
    if problem:
        raise CorruptArchive(f"{archive}: the header is invalid ({problem}).")
    return header


def _header_problem(header: dict[str, Any]) -> str:
    """What is wrong with a decoded header, or "" if nothing is."""
    fixed = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": "HKDF-SHA256",
        "cipher": "AES-256-GCM",
        "compression": "gzip",
    }
    for name, value in fixed.items():
        if header.get(name) != value:
            return f"{name} is not {value!r}"
    if not isinstance(header.get("key_id"), str) or not _KEY_ID.fullmatch(header["key_id"]):
        return "bad key_id"
    for name in ("salt", "key_check"):
        raw = _b64decode(header[name]) if isinstance(header.get(name), str) else None
        if raw is None or len(raw) != 32:
            return f"bad {name}"
    chunk_size = header.get("chunk_size")
    if type(chunk_size) is not int or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        return "bad chunk_size"
    try:
        datetime.fromisoformat(header["created_at"])
    except (KeyError, TypeError, ValueError):
        return "bad created_at"
    return ""


@contextlib.contextmanager
def _open(src: Path) -> Iterator[BinaryIO]:
    try:
        source = src.open("rb")
    except FileNotFoundError:
        raise ArchiveError(f"The backup archive {src} does not exist.") from None
    except OSError as exc:
        raise ArchiveError(f"Cannot read the backup archive {src}: {_reason(exc)}.") from exc
    with source:
        yield source


def _check_name(name: str, error: type[ArchiveError]) -> None:
    # Plain file names only: no path, no hidden file, nothing a shell or tar reads specially.
    if not MEMBER_NAME.fullmatch(name):
        raise error(
            f"{name!r} is not an acceptable archive member name "
            "(letters, digits, '.', '_', '-'; no path)."
        )


# --- Primitives ---------------------------------------------------------------------


def _derive(secret: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """(AES-256-GCM key, key-check HMAC key) of one archive."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=2 * KEY_BYTES, salt=salt, info=_HKDF_INFO)
    derived = hkdf.derive(secret)
    return derived[:KEY_BYTES], derived[KEY_BYTES:]


def _key_check(check_key: bytes) -> bytes:
    return hmac.new(check_key, b"key-check", hashlib.sha256).digest()


def _nonce(index: int) -> bytes:
    return bytes(4) + index.to_bytes(8, "big")


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + index.to_bytes(8, "big") + bytes([final])


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with _open(path) as source:
        while block := source.read(COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict base64url (padding optional), or None."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
