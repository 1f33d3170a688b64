"""Family visits: back-to-back free times at one clinic, one for each person.

A parent bringing two children wants one trip: the same clinic, times that follow each
other. This reads the ordinary search's earliest slots and groups them; booking the group
is `services.book_family_visit` (all or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from rdv.patients.models import Patient
from rdv.scheduling.models import AppointmentType
from rdv.scheduling.queries import AvailabilityQuery, FoundSlot, search_availability, type_fits

# Two times "follow each other" when the next starts at most this long after one ends.
MAX_GAP = timedelta(minutes=15)
# How many of the earliest slots to group from: enough for a day or two at busy clinics.
SCAN = 400


@dataclass(frozen=True)
class FamilyTime:
    patient: Patient
    slot: FoundSlot


@dataclass(frozen=True)
class FamilyGroup:
    times: tuple[FamilyTime, ...]

    @property
    def clinic_name(self) -> str:
        return self.times[0].slot.clinic.name

    @property
    def first(self) -> FoundSlot:
        return self.times[0].slot

    @property
    def slot_ids(self) -> str:
        return ",".join(str(t.slot.slot_id) for t in self.times)

    @property
    def patient_ids(self) -> str:
        return ",".join(str(t.patient.pk) for t in self.times)


def family_groups(
    query: AvailabilityQuery, patients: list[Patient], *, wanted: int = 10
) -> list[FamilyGroup]:
    """Up to `wanted` groups of back-to-back times, one per patient, earliest first.

    Only public slots are grouped: a slot reserved for one child's family doctor would not
    be visible to the others. Each time is given to a person it fits (the 0-5 years type
    only to young children).
    """
    public = replace(query, reserved_for_practitioner_ids=frozenset(), limit=SCAN, offset=0)
    found = search_availability(public).results
    by_clinic: dict[int, list[FoundSlot]] = {}
    for slot in found:
        by_clinic.setdefault(slot.clinic.pk, []).append(slot)
    groups: list[FamilyGroup] = []
    for slots in by_clinic.values():
        used: set[int] = set()
        for index, first in enumerate(slots):
            if first.slot_id in used:
                continue
            chain = _chain(slots[index:], len(patients), used)
            times = _assign(chain, patients) if chain else None
            if times is not None:
                groups.append(FamilyGroup(times=times))
                used.update(t.slot.slot_id for t in times)
    groups.sort(key=lambda g: (g.first.start, g.first.distance_km, g.first.slot_id))
    return groups[:wanted]


def _chain(slots: list[FoundSlot], size: int, used: set[int]) -> list[FoundSlot] | None:
    """`size` slots starting with slots[0], each beginning soon after the previous ends."""
    chain = [slots[0]]
    for slot in slots[1:]:
        if len(chain) == size:
            break
        if slot.slot_id in used:
            continue
        previous = chain[-1]
        if previous.end <= slot.start <= previous.end + MAX_GAP:
            chain.append(slot)
        elif slot.start > previous.end + MAX_GAP:
            return None
    return chain if len(chain) == size else None


def _assign(chain: list[FoundSlot], patients: list[Patient]) -> tuple[FamilyTime, ...] | None:
    """Give each time to a person it fits: the restricted (child-only) times first, each to
    the youngest who fits, then the others in order."""
    waiting = sorted(patients, key=lambda p: p.date_of_birth, reverse=True)
    restricted_first = sorted(
        range(len(chain)), key=lambda i: chain[i].appointment_type != AppointmentType.CHILD_0_5
    )
    given: dict[int, Patient] = {}
    for index in restricted_first:
        slot = chain[index]
        person = next(
            (p for p in waiting if type_fits(p.date_of_birth, slot.appointment_type, slot.start)),
            None,
        )
        if person is None:
            return None
        waiting.remove(person)
        given[index] = person
    return tuple(FamilyTime(patient=given[i], slot=slot) for i, slot in enumerate(chain))
