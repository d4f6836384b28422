"""`manage.py load_demo`: the demo user and home, idempotent."""

from __future__ import annotations

from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command

from assistant.models import Device, Home, MediaPlayer


def run(*args: str) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def test_load_demo_creates_the_demo_user_and_prints_the_login(db, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    output = run()
    user = get_user_model().objects.get(username="demo")
    assert user.check_password("demo-password")
    assert "Log in as: demo  password: demo-password" in output
    assert Home.objects.get(owner=user).devices.count() == 20


def test_load_demo_is_idempotent(db, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    run()
    counts = (
        get_user_model().objects.count(),
        Home.objects.count(),
        Device.objects.count(),
        MediaPlayer.objects.count(),
    )
    output = run()
    assert "Found the demo user" in output
    assert (
        get_user_model().objects.count(),
        Home.objects.count(),
        Device.objects.count(),
        MediaPlayer.objects.count(),
    ) == counts


def test_load_demo_takes_the_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "a-better-secret")
    output = run()
    assert get_user_model().objects.get(username="demo").check_password("a-better-secret")
    assert "password: a-better-secret" in output


def test_rerunning_keeps_a_password_the_user_changed(db, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    run()
    user = get_user_model().objects.get(username="demo")
    user.set_password("changed-by-hand")
    user.save()
    assert "password unchanged" in run()
    user.refresh_from_db()
    assert user.check_password("changed-by-hand")


def test_reset_puts_the_devices_back(db, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    run()
    Device.objects.filter(home__owner__username="demo", kind="garage_door").update(state={"open": True})
    assert "1 device(s) changed" in run("--reset")
    assert Device.objects.get(home__owner__username="demo", kind="garage_door").state == {"open": False}


def test_rerunning_load_demo_only_reads(db, monkeypatch, django_assert_max_num_queries):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    run()
    with django_assert_max_num_queries(8):
        run()
