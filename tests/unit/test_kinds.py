"""Error kinds, custom kinds and their policies."""

from __future__ import annotations

import logging

import pytest

from tracectx import Alerting, ErrorKind, KindError, get_kind, register_kind, set_policy
from tracectx.kinds import set_fatal_hook


class TestBasePolicies:
    @pytest.mark.parametrize(
        ("kind", "status", "level", "alerting", "retryable"),
        [
            (ErrorKind.TRANSIENT, 503, logging.WARNING, Alerting.NEVER, True),
            (ErrorKind.BUSINESS, 400, logging.ERROR, Alerting.BY_RULE, False),
            (ErrorKind.FATAL, 500, logging.CRITICAL, Alerting.IMMEDIATE, False),
            (ErrorKind.UNKNOWN, 500, logging.ERROR, Alerting.ALWAYS, False),
        ],
    )
    def test_policy_table_matches_the_design(self, kind, status, level, alerting, retryable):
        policy = kind.policy
        assert (policy.http_status, policy.log_level, policy.alerting, policy.retryable) == (
            status,
            level,
            alerting,
            retryable,
        )

    def test_policy_can_be_overridden_and_reset(self):
        set_policy(ErrorKind.BUSINESS, http_status=422)
        assert ErrorKind.BUSINESS.policy.http_status == 422

    def test_bad_policy_field_is_a_clear_error(self):
        with pytest.raises(KindError, match="bad policy field"):
            set_policy(ErrorKind.BUSINESS, colour="red")


class TestCustomKinds:
    def test_custom_kind_inherits_base_policy(self):
        auth = register_kind("AUTH", 4001, base=ErrorKind.BUSINESS, domain="auth")
        assert auth.policy.http_status == 400
        assert auth.is_a(ErrorKind.BUSINESS)
        assert get_kind("auth") is auth and get_kind(4001) is auth

    def test_custom_kind_overrides_only_what_it_names(self):
        auth = register_kind("AUTH", 4001, base=ErrorKind.BUSINESS, http_status=401)
        assert auth.policy.http_status == 401
        assert auth.policy.log_level == logging.ERROR
        assert ErrorKind.BUSINESS.policy.http_status == 400

    def test_clashing_name_is_rejected(self):
        register_kind("PAYMENT", 5003, base=ErrorKind.TRANSIENT)
        with pytest.raises(KindError, match="already registered"):
            register_kind("payment", 5004, base=ErrorKind.TRANSIENT)

    def test_clashing_code_is_rejected(self):
        register_kind("PAYMENT", 5003, base=ErrorKind.TRANSIENT)
        with pytest.raises(KindError, match="5003 is already used by PAYMENT"):
            register_kind("BILLING", 5003, base=ErrorKind.TRANSIENT)

    def test_base_code_clash_is_rejected(self):
        with pytest.raises(KindError):
            register_kind("OOPS", 1, base=ErrorKind.BUSINESS)

    def test_custom_kind_cannot_be_a_base(self):
        auth = register_kind("AUTH", 4001, base=ErrorKind.BUSINESS)
        with pytest.raises(KindError, match="base of SSO"):
            register_kind("SSO", 4002, base=auth)

    def test_unknown_kind_lookup_is_a_clear_error(self):
        with pytest.raises(KindError, match="unknown error kind 'NOPE'"):
            get_kind("NOPE")


class TestFatalHook:
    def test_hook_runs_once_when_fatal_error_is_first_recorded(self, spans):
        from tracectx import new_error, traced

        seen: list[str] = []
        set_fatal_hook(lambda exc, kind: seen.append(kind.name))
        with pytest.raises(Exception), traced("outer"), traced("inner"):
            raise new_error(ErrorKind.FATAL, "db gone")
        assert seen == ["FATAL"]

    def test_failing_hook_never_reaches_the_app(self, spans):
        from tracectx import new_error, traced

        def broken(exc, kind):
            raise RuntimeError("hook bug")

        set_fatal_hook(broken)
        with pytest.raises(Exception, match="db gone"), traced("op"):
            raise new_error(ErrorKind.FATAL, "db gone")


def test_policy_lookups_never_fail_while_kinds_are_reset():
    """`policy_for` reads without the lock, so `reset_kinds` must never empty the policies."""
    import sys
    import threading

    from tracectx.kinds import policy_for, reset_kinds

    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                policy_for(ErrorKind.TRANSIENT)
            except BaseException as exc:
                failures.append(exc)
                return

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20_000):
            reset_kinds()
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(old)
    assert failures == []
