"""Re-encrypt every encrypted column under the primary key of FIELD_ENCRYPTION_KEYS.

Rotation, step by step:
1. put the new key first in FIELD_ENCRYPTION_KEYS, keep the old ones after it, and
   restart every process (new writes use the new key, old tokens still decrypt);
2. run `manage.py rotate_keys` (safe while the service runs; idempotent);
3. only then drop the old key from the ring (and keep it with the backups made under it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models.functions import Cast, Left
from django.db.models.lookups import Exact

from rdv.core.crypto import VERSION, DecryptionError, KeyRing, key_ring
from rdv.core.fields import EncryptedField

Column = EncryptedField[Any, Any]


@dataclass
class Tally:
    rotated: int = 0
    changed_meanwhile: int = 0
    unreadable: int = 0

    def add(self, other: Tally) -> None:
        self.rotated += other.rotated
        self.changed_meanwhile += other.changed_meanwhile
        self.unreadable += other.unreadable

    def __str__(self) -> str:
        return (
            f"{self.rotated} re-encrypted, {self.changed_meanwhile} changed meanwhile, "
            f"{self.unreadable} unreadable"
        )


def encrypted_columns() -> list[tuple[type[models.Model], Column]]:
    """Every (model, field) whose column holds tokens, found in the app registry."""
    return [
        (model, field)
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
        for field in model._meta.local_concrete_fields
        if isinstance(field, EncryptedField)
    ]


def _raw(field: Column) -> Cast:
    """The stored token itself: cast to plain text, so that nothing decrypts it."""
    return Cast(field.attname, output_field=models.TextField())


@dataclass(frozen=True)
class ColumnRotation:
    """Re-encrypts one column, batch by batch, in primary-key order."""

    model: type[models.Model]
    field: Column
    ring: KeyRing
    batch_size: int

    def run(self, log_unreadable: Callable[[str], object]) -> Tally:
        """Each batch is its own transaction, so the service keeps running meanwhile."""
        tally = Tally()
        after: Any | None = None
        while True:
            with transaction.atomic():
                batch = self.stale_batch(after)
                for pk, token in batch:
                    self.rotate_row(pk, token, tally, log_unreadable)
            if len(batch) < self.batch_size:
                return tally
            after = batch[-1][0]

    def stale_batch(self, after: Any | None) -> list[tuple[Any, str]]:
        """(pk, token) of the next rows after pk `after` whose token is not under the
        primary key. The prefix is compared with `=` on a substring, not with LIKE, which
        ignores case on SQLite while key ids do not."""
        prefix = f"{VERSION}.{self.ring.primary_kid}."
        rows = self.model._default_manager.all()
        if after is not None:
            rows = rows.filter(pk__gt=after)
        rows = (
            rows.exclude(**{f"{self.field.attname}__isnull": True})
            .annotate(_stored=_raw(self.field))
            .alias(_prefix=Left(_raw(self.field), len(prefix)))
            .exclude(_stored="")
            .exclude(_prefix=prefix)
            .order_by("pk")
        )
        return [
            (pk, str(token)) for pk, token in rows.values_list("pk", "_stored")[: self.batch_size]
        ]

    def rotate_row(
        self, pk: Any, token: str, tally: Tally, log_unreadable: Callable[[str], object]
    ) -> None:
        try:
            won = self.compare_and_set(pk, token)
        except DecryptionError as exc:
            # The message names the column and the key id, never the value.
            log_unreadable(f"row {pk}: {exc}")
            tally.unreadable += 1
            return
        if won:
            tally.rotated += 1
        else:
            tally.changed_meanwhile += 1

    def compare_and_set(self, pk: Any, token: str) -> bool:
        """Replace `token` by a fresh one under the primary key, only if the row still holds
        `token`: a concurrent write (already under the primary key) is never overwritten."""
        context = self.field.encryption_context
        fresh = self.ring.encrypt(self.ring.decrypt(token, context=context), context=context)
        updated = (
            self.model._default_manager.filter(pk=pk)
            .filter(Exact(_raw(self.field), models.Value(token)))
            .update(**{self.field.attname: models.Value(fresh, output_field=models.TextField())})
        )
        return updated == 1


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column under the primary key (safe while serving)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = int(options["batch_size"])
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        ring = key_ring()
        total = Tally()
        for model, field in encrypted_columns():
            tally = ColumnRotation(model, field, ring, batch_size).run(self.stderr.write)
            self.stdout.write(f"{field.encryption_context}: {tally}")
            total.add(tally)
        self.stdout.write(f"Total under key {ring.primary_kid!r}: {total}")
        if total.changed_meanwhile:
            self.stdout.write("Rows changed meanwhile were written anew; run again to check.")
        if total.unreadable:
            raise CommandError("Some values could not be decrypted with the configured keys.")
