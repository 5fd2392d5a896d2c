"""classify() and is_kind() over types, predicates, cause chains, groups and cycles."""

from __future__ import annotations

import pytest

from tracectx import (
    ErrorKind,
    classify,
    is_kind,
    new_error,
    register_exception,
    register_kind,
    register_predicate,
)
from tracectx.classify import unregister_exception, unregister_predicate


class DbDown(Exception):
    pass


class ReplicaDown(DbDown):
    pass


class TestClassify:
    def test_explicit_kind_wins(self):
        assert classify(new_error(ErrorKind.BUSINESS, "no funds")) is ErrorKind.BUSINESS

    @pytest.mark.parametrize("exc", [TimeoutError(), ConnectionResetError(), ConnectionError()])
    def test_builtin_transient_errors(self, exc):
        assert classify(exc) is ErrorKind.TRANSIENT

    def test_unknown_by_default(self):
        assert classify(KeyError("x")) is ErrorKind.UNKNOWN

    def test_registry_most_specific_type_wins(self):
        register_exception(DbDown, ErrorKind.FATAL)
        register_exception(ReplicaDown, ErrorKind.TRANSIENT)
        assert classify(DbDown()) is ErrorKind.FATAL
        assert classify(ReplicaDown()) is ErrorKind.TRANSIENT

    def test_predicate(self):
        register_predicate(lambda e: ErrorKind.BUSINESS if "invalid" in str(e) else None)
        assert classify(ValueError("invalid iban")) is ErrorKind.BUSINESS
        assert classify(ValueError("other")) is ErrorKind.UNKNOWN

    def test_broken_predicate_is_skipped(self):
        register_predicate(lambda e: 1 / 0)
        assert classify(ValueError()) is ErrorKind.UNKNOWN

    def test_cause_chain(self):
        try:
            try:
                raise TimeoutError("upstream")
            except TimeoutError as inner:
                raise RuntimeError("wrapped") from inner
        except RuntimeError as outer:
            assert classify(outer) is ErrorKind.TRANSIENT

    def test_group_takes_most_limiting_member(self):
        group = ExceptionGroup("g", [TimeoutError(), new_error(ErrorKind.BUSINESS, "b")])
        assert classify(group) is ErrorKind.BUSINESS

    def test_custom_kind(self):
        auth = register_kind("AUTH", 4001, base=ErrorKind.BUSINESS)
        assert classify(new_error(auth, "denied")) is auth


class TestIsKind:
    def test_walks_cause_and_context(self):
        try:
            try:
                raise new_error(ErrorKind.BUSINESS, "no funds")
            except Exception:
                raise KeyError("while handling")  # noqa: B904 - implicit context on purpose
        except KeyError as exc:
            assert is_kind(exc, ErrorKind.BUSINESS)
            assert not is_kind(exc, ErrorKind.FATAL)

    def test_walks_nested_groups(self):
        inner = ExceptionGroup("inner", [new_error(ErrorKind.FATAL, "boom")])
        outer = ExceptionGroup("outer", [ValueError(), inner])
        assert is_kind(outer, ErrorKind.FATAL)

    def test_cycle_terminates(self):
        a, b = ValueError("a"), ValueError("b")
        a.__cause__, b.__cause__ = b, a
        a.__context__ = a
        assert classify(a) is ErrorKind.UNKNOWN
        assert not is_kind(a, ErrorKind.TRANSIENT)

    def test_custom_kind_is_its_base(self):
        auth = register_kind("AUTH", 4001, base=ErrorKind.BUSINESS)
        assert is_kind(new_error(auth, "denied"), ErrorKind.BUSINESS)
        assert is_kind(new_error(auth, "denied"), auth)
        assert not is_kind(new_error(ErrorKind.BUSINESS, "x"), auth)


class TestLostWorkers:
    def test_a_broken_process_pool_is_transient_like_a_lost_celery_worker(self):
        from concurrent.futures.process import BrokenProcessPool

        assert classify(BrokenProcessPool("a worker died")) is ErrorKind.TRANSIENT


class TestUnregister:
    def test_unregister_exception_undoes_register(self):
        register_exception(DbDown, ErrorKind.FATAL)
        assert unregister_exception(DbDown) is True
        assert (
            classify(DbDown()) is ErrorKind.UNKNOWN and classify(ReplicaDown()) is ErrorKind.UNKNOWN
        )
        assert unregister_exception(DbDown) is False

    def test_a_built_in_type_goes_back_to_its_built_in_kind(self):
        register_exception(TimeoutError, ErrorKind.FATAL)
        assert unregister_exception(TimeoutError, ErrorKind.FATAL) is True
        assert classify(TimeoutError()) is ErrorKind.TRANSIENT
        assert unregister_exception(TimeoutError) is False  # nothing registered to undo

    def test_with_a_kind_only_that_registration_is_undone(self):
        """An integration's uninstrument leaves a mapping the application changed since."""
        register_exception(DbDown, ErrorKind.TRANSIENT)  # the integration
        register_exception(DbDown, ErrorKind.FATAL)  # the application, later
        assert unregister_exception(DbDown, ErrorKind.TRANSIENT) is False
        assert classify(DbDown()) is ErrorKind.FATAL

    def test_unregister_predicate(self):
        def invalid(e):
            return ErrorKind.BUSINESS if "invalid" in str(e) else None

        register_predicate(invalid)
        assert unregister_predicate(invalid) is True
        assert classify(ValueError("invalid iban")) is ErrorKind.UNKNOWN
        assert unregister_predicate(invalid) is False
