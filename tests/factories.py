"""Factories for bulk test data. The named people of the story live in conftest.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import factory

from rdv.accounts.models import User
from rdv.clinics.models import Clinic, Practitioner, PractitionerLanguage
from rdv.patients.models import Patient
from rdv.scheduling.models import AppointmentType, AvailabilityRule, Slot, Visibility

# Laval, as in the reference data.
LAVAL = (45.5699, -73.6920)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    first_name = "Alex"
    last_name = "Test"
    # Booking needs a confirmed email; tests of the confirmation itself pass None.
    email_verified_at = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj: User, create: bool, extracted: object, **kwargs: object) -> None:  # noqa: N805
        if create:
            obj.save()


class ClinicFactory(factory.django.DjangoModelFactory[Clinic]):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinique {n}")
    kind = Clinic.Kind.GMF
    municipality_geonameid = 6050610
    municipality_name = "Laval"
    address = "1, rue Principale, Laval"
    phone = "+1 450 555-0100"
    latitude = LAVAL[0]
    longitude = LAVAL[1]
    cancellation_cutoff_hours = 24


class PractitionerFactory(factory.django.DjangoModelFactory[Practitioner]):
    class Meta:
        model = Practitioner
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    first_name = "Camille"
    last_name = factory.Sequence(lambda n: f"Médecin{n}")
    profession = Practitioner.Profession.FAMILY_DOCTOR

    @factory.post_generation
    def languages(
        self: Practitioner, create: bool, extracted: list[str] | None, **kwargs: object
    ) -> None:
        if create:
            for code in extracted if extracted is not None else ["fr"]:
                PractitionerLanguage.objects.create(practitioner=self, code=code)


class RuleFactory(factory.django.DjangoModelFactory[AvailabilityRule]):
    class Meta:
        model = AvailabilityRule

    practitioner = factory.SubFactory(PractitionerFactory)
    weekday = 0
    start_time = time(9)
    end_time = time(12)
    slot_minutes = 30
    appointment_type = AppointmentType.URGENT
    visibility = Visibility.PUBLIC
    valid_from = date(2026, 1, 1)


class SlotFactory(factory.django.DjangoModelFactory[Slot]):
    class Meta:
        model = Slot

    practitioner = factory.SubFactory(PractitionerFactory)
    clinic = factory.SelfAttribute("practitioner.clinic")
    appointment_type = AppointmentType.URGENT
    visibility = Visibility.PUBLIC


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    account = factory.SubFactory(UserFactory)
    relationship = Patient.Relationship.SELF
    first_name = "Sam"
    last_name = "Patient"
    date_of_birth = date(1980, 1, 1)
