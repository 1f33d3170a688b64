"""Demo data that looks like Quebec: 378 clinics in 157 real municipalities.

Everything here is invented except the places (GeoNames). Names are combinations of
common Quebec given names and surnames, not real people. Random choices use a fixed seed,
so every machine gets the same clinics; passwords are random per machine.
"""

from __future__ import annotations

import json
import os
import random
import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import User
from rdv.billing import services as billing
from rdv.clinics.models import Clinic, Membership, Practitioner, PractitionerLanguage
from rdv.core import clock
from rdv.core.geo import Municipality, municipalities
from rdv.finder import services as finder
from rdv.finder.models import Mode
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import AppointmentType, AvailabilityRule, Visibility

CLINIC_COUNT = 378
MUNICIPALITY_COUNT = 157
DEMO_DAYS = 14
DEMO_EMAIL_DOMAIN = "demo.rdvsante.test"

FIRST_NAMES = (
    "Marie",
    "Julie",
    "Isabelle",
    "Catherine",
    "Geneviève",
    "Mélanie",
    "Sophie",
    "Nathalie",
    "Émilie",
    "Audrey",
    "Camille",
    "Chloé",
    "Léa",
    "Sarah",
    "Valérie",
    "Annie",
    "Karine",
    "Jean",
    "Pierre",
    "Marc",
    "François",
    "Philippe",
    "Mathieu",
    "Simon",
    "Alexandre",
    "Nicolas",
    "Olivier",
    "Sébastien",
    "Martin",
    "Louis",
    "Gabriel",
    "Étienne",
    "Samuel",
    "Vincent",
    "Maxime",
    "David",
    "Amira",
    "Yasmine",
    "Karim",
    "Mohamed",
    "Wei",
    "Linh",
    "Andrés",
    "Sofia",
    "Ioana",
    "Reza",
)
LAST_NAMES = (
    "Tremblay",
    "Gagnon",
    "Roy",
    "Côté",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Gagné",
    "Ouellet",
    "Pelletier",
    "Bélanger",
    "Lévesque",
    "Bergeron",
    "Leblanc",
    "Paquette",
    "Girard",
    "Simard",
    "Boucher",
    "Caron",
    "Beaulieu",
    "Cloutier",
    "Dubé",
    "Poirier",
    "Fournier",
    "Lapointe",
    "Leclerc",
    "Lefebvre",
    "Poulin",
    "Thibault",
    "St-Pierre",
    "Nadeau",
    "Martin",
    "Landry",
    "Martel",
    "Bédard",
    "Grenier",
    "Lessard",
    "Bernier",
    "Richard",
    "Michaud",
    "Hébert",
    "Desjardins",
    "Couture",
    "Turcotte",
)
OTHER_LANGUAGES = ("es", "ar", "zh", "vi", "it", "pt", "ro", "fa", "ht")
STREETS = (
    "rue Principale",
    "boulevard Saint-Joseph",
    "rue Notre-Dame",
    "rue Saint-Jean",
    "boulevard des Laurentides",
    "rue King",
    "avenue du Parc",
    "rue de l'Église",
    "boulevard René-Lévesque",
    "chemin du Lac",
    "rue Sherbrooke",
    "boulevard Taschereau",
)
KINDS = (Clinic.Kind.GMF, Clinic.Kind.CLSC, Clinic.Kind.WALK_IN, Clinic.Kind.PRIVATE)
KIND_WEIGHTS = (45, 20, 25, 10)


@dataclass(frozen=True)
class DemoSummary:
    clinics: int
    practitioners: int
    slots: int
    credentials: dict[str, Any]


def chosen_municipalities(count: int = MUNICIPALITY_COUNT) -> list[Municipality]:
    """The most populous places, one clinic at least in each."""
    return [m for m in municipalities() if m.population > 0][:count]


def clinics_per_municipality(places: list[Municipality], total: int) -> list[int]:
    """Spread `total` clinics over places: one each, the rest by population^0.7
    (largest remainder), so Montréal gets many but not all."""
    weights = [m.population**0.7 for m in places]
    extra = total - len(places)
    shares = [w / sum(weights) * extra for w in weights]
    counts = [1 + int(s) for s in shares]
    remainders = sorted(range(len(places)), key=lambda i: shares[i] - int(shares[i]), reverse=True)
    for i in remainders[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _clinic_name(rng: random.Random, kind: str, place: str, n: int) -> str:
    suffix = (
        ""
        if n == 0
        else f" {rng.choice(['Centre', 'Nord', 'Sud', 'Est', 'Ouest', 'des Érables', 'du Parc', 'de la Rivière'])}"
    )
    if kind == Clinic.Kind.GMF:
        return f"GMF {place}{suffix}"
    if kind == Clinic.Kind.CLSC:
        return f"CLSC de {place}{suffix}"
    if kind == Clinic.Kind.WALK_IN:
        return f"Clinique sans rendez-vous {place}{suffix}"
    return f"Clinique médicale privée {place}{suffix}"


def _weighted_kind(rng: random.Random) -> str:
    return str(rng.choices(KINDS, weights=KIND_WEIGHTS)[0])


def _build_clinics(rng: random.Random, total: int, municipality_count: int) -> list[Clinic]:
    places = chosen_municipalities(municipality_count)
    clinics: list[Clinic] = []
    for place, count in zip(places, clinics_per_municipality(places, total), strict=True):
        spread_km = min(1.0 + place.population / 150_000, 8.0)
        for n in range(count):
            kind = _weighted_kind(rng)
            clinics.append(
                Clinic(
                    name=_clinic_name(rng, kind, place.name, n)[:200],
                    kind=kind,
                    municipality_geonameid=place.geonameid,
                    municipality_name=place.name,
                    address=f"{rng.randint(10, 4999)}, {rng.choice(STREETS)}, {place.name}",
                    phone=f"+1 {rng.choice(['418', '438', '450', '514', '579', '581', '819', '873'])} 555-{rng.randint(1000, 9999)}",
                    latitude=round(place.latitude + rng.uniform(-1, 1) * spread_km / 111, 5),
                    longitude=round(place.longitude + rng.uniform(-1, 1) * spread_km / 78, 5),
                    cancellation_cutoff_hours=rng.choice([2, 4, 12, 24, 24, 48]),
                )
            )
    return Clinic.objects.bulk_create(clinics, batch_size=500)


def _profession(rng: random.Random, kind: str) -> str:
    weights = (35, 25, 40) if kind == Clinic.Kind.CLSC else (65, 20, 15)
    professions = (
        Practitioner.Profession.FAMILY_DOCTOR,
        Practitioner.Profession.NURSE_PRACTITIONER,
        Practitioner.Profession.NURSE,
    )
    return str(rng.choices(professions, weights=weights)[0])


def _languages(rng: random.Random) -> list[str]:
    codes = ["fr"]
    if rng.random() < 0.6:
        codes.append("en")
    if rng.random() < 0.12:
        codes.append(rng.choice(OTHER_LANGUAGES))
    return codes


DEMO_RELEASE_HOURS = 24


# (appointment types, visibility, minutes) per profession and clinic kind.
def _rule_shape(rng: random.Random, profession: str, kind: str) -> tuple[list[str], int]:
    if kind == Clinic.Kind.WALK_IN:
        return [AppointmentType.URGENT], 15
    if profession == Practitioner.Profession.FAMILY_DOCTOR:
        return [
            AppointmentType.URGENT,
            AppointmentType.PRIORITY,
            AppointmentType.PERIODIC,
            AppointmentType.FOLLOW_UP,
        ], rng.choice([15, 20])
    if profession == Practitioner.Profession.NURSE_PRACTITIONER:
        return [
            AppointmentType.PRIORITY,
            AppointmentType.FOLLOW_UP,
            AppointmentType.PREGNANCY,
        ], rng.choice([20, 30])
    return [
        AppointmentType.CHILD_0_5,
        AppointmentType.FOLLOW_UP,
        AppointmentType.PREGNANCY,
    ], rng.choice([20, 30])


def _rules_for(
    rng: random.Random, practitioner: Practitioner, kind: str, start: date
) -> list[AvailabilityRule]:
    types, minutes = _rule_shape(rng, practitioner.profession, kind)
    days = rng.sample(range(7 if kind == Clinic.Kind.WALK_IN else 5), k=rng.choice([3, 4]))
    blocks = [(time(8), time(12)), (time(13), time(17)), (time(18), time(21))]
    rules = []
    for weekday in sorted(days):
        for block_start, block_end in rng.sample(
            blocks[:2] if kind != Clinic.Kind.WALK_IN else blocks, k=rng.choice([1, 2])
        ):
            appointment_type = rng.choice(types)
            reserved = (
                appointment_type in (AppointmentType.PERIODIC, AppointmentType.FOLLOW_UP)
                and practitioner.profession == Practitioner.Profession.FAMILY_DOCTOR
            )
            rules.append(
                AvailabilityRule(
                    practitioner=practitioner,
                    weekday=weekday,
                    start_time=block_start,
                    end_time=block_end,
                    slot_minutes=minutes,
                    appointment_type=appointment_type,
                    visibility=Visibility.REGISTERED if reserved else Visibility.PUBLIC,
                    # Reserved times still free the day before open to everyone.
                    release_hours=DEMO_RELEASE_HOURS if reserved else None,
                    valid_from=start,
                )
            )
    return rules


def _build_practitioners(
    rng: random.Random, clinics: list[Clinic], start: date
) -> list[Practitioner]:
    practitioners: list[Practitioner] = []
    kinds: list[str] = []
    for clinic in clinics:
        for _ in range(rng.choice([3, 4, 4, 5])):
            practitioners.append(
                Practitioner(
                    clinic=clinic,
                    first_name=rng.choice(FIRST_NAMES),
                    last_name=rng.choice(LAST_NAMES),
                    profession=_profession(rng, clinic.kind),
                    accepting_new_patients=rng.random() < 0.15,
                )
            )
            kinds.append(clinic.kind)
    practitioners = Practitioner.objects.bulk_create(practitioners, batch_size=500)
    PractitionerLanguage.objects.bulk_create(
        [
            PractitionerLanguage(practitioner=p, code=c)
            for p in practitioners
            for c in _languages(rng)
        ],
        batch_size=1000,
    )
    rules = [
        r for p, k in zip(practitioners, kinds, strict=True) for r in _rules_for(rng, p, k, start)
    ]
    AvailabilityRule.objects.bulk_create(rules, batch_size=1000)
    return practitioners


def _fictional_ramq(patient: Patient) -> str:
    """A number that follows the RAMQ rules for this patient; "11" as administrative digits."""
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    return f"{letters}{patient.date_of_birth:%y%m%d}11"


def _password() -> str:
    return secrets.token_urlsafe(12)


def _create_people(clinics: list[Clinic]) -> dict[str, Any]:
    in_laval = sorted(
        (c for c in clinics if c.municipality_name == "Laval"),
        key=lambda c: c.kind != Clinic.Kind.GMF,
    )
    laval = in_laval[0]
    montreal = next(c for c in clinics if c.municipality_name == "Montréal")
    family_doctor = (
        Practitioner.objects.filter(clinic=laval, profession=Practitioner.Profession.FAMILY_DOCTOR)
        .order_by("pk")
        .first()
        or Practitioner.objects.filter(clinic=laval).order_by("pk").first()
    )
    credentials: dict[str, Any] = {}

    def person(key: str, email_local: str, first: str, last: str, **extra: Any) -> User:
        password = _password()
        user = User.objects.create_user(
            f"{email_local}@{DEMO_EMAIL_DOMAIN}",
            password,
            first_name=first,
            last_name=last,
            email_verified_at=clock.now(),
            **extra,
        )
        credentials[key] = {"email": user.email, "password": password}
        return user

    def authenticator(user: User) -> dict[str, str]:
        # Staff sign in with two factors: a ready authenticator, its secret for an app.
        device = provision_confirmed_totp(user)
        return {
            "totp_secret": b32encode(device.bin_key).decode(),
            "otpauth_uri": device.config_url,
        }

    patient = person("patient", "patiente", "Marie", "Tremblay")
    marie = Patient.objects.create(
        account=patient,
        relationship=Patient.Relationship.SELF,
        first_name="Marie",
        last_name="Tremblay",
        date_of_birth=date(1988, 4, 12),
        phone="+1 450 555-0142",
        family_doctor=family_doctor,
    )
    child = Patient.objects.create(
        account=patient,
        relationship=Patient.Relationship.CHILD,
        first_name="Léa",
        last_name="Tremblay",
        date_of_birth=clock.local_today() - timedelta(days=3 * 365 + 40),
        family_doctor=family_doctor,
    )
    for someone in (marie, child):
        set_health_card(
            patient=someone,
            ramq_number=_fictional_ramq(someone),
            card_sequence_number="01",
            actor=patient,
        )
    credentials["patient"]["dependants"] = [
        {"patient_id": child.pk, "first_name": "Léa", "relationship": "child"}
    ]
    credentials["patient"]["family_doctor"] = family_doctor.display_name if family_doctor else None
    for key, local, first, last, clinic, role in (
        (
            "receptionist",
            "reception.laval",
            "Sophie",
            "Gagnon",
            laval,
            Membership.Role.RECEPTIONIST,
        ),
        ("clinic_admin", "admin.laval", "Marc", "Bouchard", laval, Membership.Role.CLINIC_ADMIN),
        (
            "other_clinic_staff",
            "reception.montreal",
            "Karim",
            "Haddad",
            montreal,
            Membership.Role.RECEPTIONIST,
        ),
    ):
        user = person(key, local, first, last)
        Membership.objects.create(user=user, clinic=clinic, role=role)
        credentials[key]["clinic"] = {"id": clinic.pk, "name": clinic.name}
        credentials[key].update(authenticator(user))
    admin = person(
        "platform_admin",
        "admin.plateforme",
        "Admin",
        "Plateforme",
        is_staff=True,
        is_superuser=True,
    )
    credentials["platform_admin"].update(authenticator(admin))
    return credentials


def seed(
    credentials_path: Path,
    *,
    clinic_count: int = CLINIC_COUNT,
    municipality_count: int = MUNICIPALITY_COUNT,
    days: int = DEMO_DAYS,
) -> DemoSummary:
    """Create the demo data set once. Raises if clinics already exist.

    Laval and Montréal must be among the municipalities (the demo accounts work there).
    """
    if Clinic.objects.exists():
        raise RuntimeError("demo data already loaded")
    # Reproducible demo data; the passwords come from `secrets`.
    rng = random.Random(20191019)  # nosec B311
    start = clock.local_today()
    with transaction.atomic():
        clinics = _build_clinics(rng, clinic_count, municipality_count)
        practitioners = _build_practitioners(rng, clinics, start)
        credentials = _create_people(clinics)
    slots = 0
    last = start + timedelta(days=days - 1)
    for practitioner in practitioners:
        slots += scheduling.generate_slots(
            practitioner_id=practitioner.pk, first_day=start, last_day=last
        ).created
    _finder_request(credentials["patient"]["email"], start)
    write_credentials(credentials_path, credentials)
    return DemoSummary(len(clinics), len(practitioners), slots, credentials)


def _finder_request(email: str, today: date) -> None:
    """One open appointment-finder search for the demo patient, paid with the built-in
    test provider, so its pages show something (a real provider's payment cannot be
    faked: then none)."""
    if settings.PAYMENT_PROVIDER != "test":
        return
    user = User.objects.get(email=email)
    request = finder.create_request(
        user=user,
        spec=finder.RequestSpec(
            patient_id=None,
            mode=Mode.OFFER,
            appointment_type=AppointmentType.PERIODIC,
            place="Laval",
            radius_km=10,
            earliest_date=today + timedelta(days=1),
            latest_date=today + timedelta(days=13),
            time_windows=(finder.TimeWindow(weekday=2, start=time(8), end=time(12)),),
            language="",
            deadline=today + timedelta(days=10),
            notify_by_email=True,
            notify_by_sms=False,
        ),
    )
    if request.payment_id is not None:
        billing.pay_with_test_provider(account=user, payment_id=request.payment_id, succeed=True)


def write_credentials(path: Path, credentials: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(credentials, f, ensure_ascii=False, indent=2)
        f.write("\n")
