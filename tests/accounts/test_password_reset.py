"""Password reset by email (rdv.accounts.password_reset): who gets a link, how long it
lives, what it ends, and what it leaves alone (staff keep their second factor)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.db import connection
from django.test import Client

from rdv.accounts import lockout, password_reset, services
from rdv.accounts.models import User
from rdv.accounts.password_reset import ResetLinkInvalid
from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.core.errors import NotAuthenticated, ValidationError
from tests.accounts.helpers import enrol, totp_code
from tests.conftest import PASSWORD, Cast, sent_mail
from tests.factories import UserFactory

NEW_PASSWORD = "a quiet lake at dawn"
LINK = re.compile(r"https?://\S+/compte/mot-de-passe/nouveau/(?P<uid>[^/\s]+)/(?P<token>[^/\s]+)/")


Run = Callable[..., Any]


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Run:
    """Call a service as if its transaction committed: its after-commit work (the mail)
    runs before the call returns."""

    def run(service: Callable[..., Any], **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return run


def ask_for_link(run: Run, email: str) -> tuple[str, str]:
    """(uidb64, token) from the mail that asking for `email`'s reset sends."""
    before = len(sent_mail())
    run(password_reset.request_password_reset, email=email)
    assert len(sent_mail()) == before + 1
    found = LINK.search(str(sent_mail()[-1].body))
    assert found is not None, sent_mail()[-1].body
    return found["uid"], found["token"]


def reset(run: Run, link: tuple[str, str], password: str = NEW_PASSWORD) -> User:
    user: User = run(
        password_reset.reset_password, uidb64=link[0], token=link[1], new_password=password
    )
    return user


def test_a_known_email_gets_a_link_and_an_unknown_one_gets_nothing(
    cast: Cast, committed: Run, settings: Any
) -> None:
    settings.SITE_URL = "https://rdvsante.example"
    assert committed(password_reset.request_password_reset, email="nobody@example.test") is None
    assert sent_mail() == []
    assert committed(password_reset.request_password_reset, email="  Marie@Example.TEST ") is None
    assert [m.to for m in sent_mail()] == [["marie@example.test"]]
    body = str(sent_mail()[0].body)
    assert "https://rdvsante.example/compte/mot-de-passe/nouveau/" in body
    assert "60 minutes" in body


def test_an_inactive_account_gets_no_link(cast: Cast, committed: Run) -> None:
    User.objects.filter(pk=cast.paul.pk).update(is_active=False)
    committed(password_reset.request_password_reset, email=cast.paul.email)
    assert sent_mail() == []


def test_the_mail_is_in_the_accounts_language(cast: Cast, committed: Run) -> None:
    User.objects.filter(pk=cast.paul.pk).update(preferred_language="en")
    ask_for_link(committed, cast.paul.email)
    message = sent_mail()[0]
    assert message.subject == "Reset your RDV Santé password"
    assert "Hello Paul," in str(message.body)
    assert "The link works once, for 60 minutes." in str(message.body)


def test_the_link_works_once(cast: Cast, committed: Run) -> None:
    link = ask_for_link(committed, cast.marie.email)
    assert password_reset.check_reset_link(uidb64=link[0], token=link[1]) == cast.marie
    assert reset(committed, link) == cast.marie
    assert authenticate(username=cast.marie.email, password=NEW_PASSWORD) == cast.marie
    assert authenticate(username=cast.marie.email, password=PASSWORD) is None

    with pytest.raises(ResetLinkInvalid):
        password_reset.check_reset_link(uidb64=link[0], token=link[1])
    with pytest.raises(ResetLinkInvalid):
        reset(committed, link, "another long passphrase")
    assert authenticate(username=cast.marie.email, password=NEW_PASSWORD) == cast.marie


def test_a_newer_link_does_not_revive_an_older_one_once_used(cast: Cast, committed: Run) -> None:
    first = ask_for_link(committed, cast.marie.email)
    second = ask_for_link(committed, cast.marie.email)
    reset(committed, second)
    with pytest.raises(ResetLinkInvalid):
        reset(committed, first, "another long passphrase")


def test_a_link_expires_after_an_hour(cast: Cast, committed: Run) -> None:
    link = ask_for_link(committed, cast.marie.email)
    with clock.frozen_now(clock.now() + timedelta(minutes=59)):
        assert password_reset.check_reset_link(uidb64=link[0], token=link[1]) == cast.marie
    with clock.frozen_now(clock.now() + timedelta(minutes=61)):
        with pytest.raises(ResetLinkInvalid):
            password_reset.check_reset_link(uidb64=link[0], token=link[1])
        with pytest.raises(ResetLinkInvalid):
            reset(committed, link)
    assert authenticate(username=cast.marie.email, password=PASSWORD) == cast.marie


def test_the_lifetime_comes_from_the_settings(cast: Cast, committed: Run, settings: Any) -> None:
    settings.PASSWORD_RESET_TIMEOUT = 600
    link = ask_for_link(committed, cast.marie.email)
    assert "10 minutes" in str(sent_mail()[0].body)
    with clock.frozen_now(clock.now() + timedelta(minutes=11)), pytest.raises(ResetLinkInvalid):
        reset(committed, link)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda uid, token, other: (uid, token[:-1] + ("0" if token[-1] != "0" else "1")),
        lambda uid, token, other: (other, token),  # Marie's token on Paul's account
        lambda uid, token, other: ("!!", token),
        lambda uid, token, other: ("MTIzNDU2Nzg5", token),  # an account that does not exist
        lambda uid, token, other: (uid, "nonsense"),
        lambda uid, token, other: (uid, "zzzzzzzzzzzzzz-abc"),  # a timestamp out of range
        lambda uid, token, other: (uid, ""),
    ],
)
def test_an_altered_link_is_refused(
    cast: Cast, committed: Run, mangle: Callable[[str, str, str], tuple[str, str]]
) -> None:
    uid, token = ask_for_link(committed, cast.marie.email)
    pauls_uid, _ = ask_for_link(committed, cast.paul.email)
    bad = mangle(uid, token, pauls_uid)
    with pytest.raises(ResetLinkInvalid):
        password_reset.check_reset_link(uidb64=bad[0], token=bad[1])
    with pytest.raises(ResetLinkInvalid):
        reset(committed, bad)
    assert authenticate(username=cast.marie.email, password=PASSWORD) == cast.marie
    assert authenticate(username=cast.paul.email, password=PASSWORD) == cast.paul


def test_a_reset_ends_every_session_and_api_token(cast: Cast, committed: Run) -> None:
    browser = Client()
    browser.force_login(cast.marie)
    assert browser.get("/mes-rendez-vous/").status_code == 200
    token = services.issue_api_token(email=cast.marie.email, password=PASSWORD)
    assert services.user_for_token(token) == cast.marie

    reset(committed, ask_for_link(committed, cast.marie.email))

    assert services.user_for_token(token) is None
    signed_out = browser.get("/mes-rendez-vous/")
    assert signed_out.status_code == 302
    assert signed_out["Location"].startswith("/compte/connexion/")


def test_the_password_rules_apply_and_a_refused_password_leaves_the_link_usable(
    cast: Cast, committed: Run
) -> None:
    link = ask_for_link(committed, cast.marie.email)
    for weak in ("short", "password123", "marie@example.test", "x" * 257):
        with pytest.raises(ValidationError) as refused:
            reset(committed, link, weak)
        assert refused.value.field == "new_password"
    assert reset(committed, link) == cast.marie


def test_staff_need_twelve_characters(cast: Cast, committed: Run) -> None:
    link = ask_for_link(committed, cast.sophie.email)
    with pytest.raises(ValidationError):
        reset(committed, link, "eleven char")
    reset(committed, link, "twelve chars ok")


def test_staff_still_need_their_second_factor_after_a_reset(cast: Cast, committed: Run) -> None:
    device = enrol(cast.sophie)
    reset(committed, ask_for_link(committed, cast.sophie.email))
    with pytest.raises(NotAuthenticated) as refused:
        services.sign_in(email=cast.sophie.email, password=NEW_PASSWORD)
    assert refused.value.code == "second_factor_required"
    user = services.sign_in(email=cast.sophie.email, password=NEW_PASSWORD, otp=totp_code(device))
    assert user == cast.sophie


def test_a_reset_clears_the_lockout_of_an_account_without_a_second_factor(
    cast: Cast, committed: Run
) -> None:
    for _ in range(lockout.THRESHOLD):
        lockout.reserve_attempt(cast.marie.email)
    with pytest.raises(lockout.TooManyAttempts):
        lockout.reserve_attempt(cast.marie.email)
    reset(committed, ask_for_link(committed, cast.marie.email))
    assert services.sign_in(email=cast.marie.email, password=NEW_PASSWORD) == cast.marie


def test_a_reset_leaves_the_lockout_of_an_account_with_a_second_factor(
    cast: Cast, committed: Run
) -> None:
    """That lock also limits guesses at the second factor: a new link must not lift it."""
    enrol(cast.sophie)
    for _ in range(lockout.THRESHOLD):
        lockout.reserve_attempt(cast.sophie.email)
    reset(committed, ask_for_link(committed, cast.sophie.email))
    with pytest.raises(lockout.TooManyAttempts):
        lockout.reserve_attempt(cast.sophie.email)


def test_the_account_is_told_that_its_password_changed(cast: Cast, committed: Run) -> None:
    reset(committed, ask_for_link(committed, cast.marie.email))
    notice = sent_mail()[-1]
    assert notice.to == [cast.marie.email]
    assert notice.subject != sent_mail()[0].subject
    assert "/compte/mot-de-passe/oublie/" in str(notice.body)


def test_requests_and_resets_are_audited(cast: Cast, committed: Run) -> None:
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    committed(password_reset.request_password_reset, email="nobody@example.test")
    link = ask_for_link(committed, cast.marie.email)
    with pytest.raises(ResetLinkInvalid):
        reset(committed, (link[0], link[1] + "0"))
    reset(committed, link)
    assert list(
        AuditEntry.objects.filter(id__gt=before)
        .order_by("id")
        .values_list("action", "actor_id", "outcome", "object_id")
    ) == [
        ("auth.password_reset.request", None, "failure", ""),
        ("auth.password_reset.request", cast.marie.pk, "success", str(cast.marie.pk)),
        ("auth.password_reset", None, "failure", ""),
        ("auth.password_reset", cast.marie.pk, "success", str(cast.marie.pk)),
    ]


@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_one_link_change_the_password_once() -> None:
    user = UserFactory.create(email="racer@example.test")
    # Real commits here: the mail goes out without any help.
    uidb64, token = ask_for_link(lambda service, **kw: service(**kw), user.email)
    barrier = threading.Barrier(2)
    results: list[str] = []
    lock = threading.Lock()

    def attempt(password: str) -> None:
        barrier.wait()
        try:
            password_reset.reset_password(uidb64=uidb64, token=token, new_password=password)
            outcome = password
        except ResetLinkInvalid:
            outcome = "refused"
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=attempt, args=(p,))
        for p in ("first long passphrase", "second long passphrase")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    assert results.count("refused") == 1, results
    winner = next(r for r in results if r != "refused")
    assert authenticate(username=user.email, password=winner) == user
