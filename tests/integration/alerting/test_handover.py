"""A firing alert outlives its owner, against a real redis-server. Two engines share Redis
windows: the one that fires dies before its alert leaves (a SIGKILL while the send is queued),
and the other sends it, re-sends it and resolves it. A live owner keeps its alerts. An owner
that comes back after being adopted stops sending."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis as redis_client

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tracectx.alerting import AlertEngine, RedisWindows

pytestmark = pytest.mark.integration

T0 = 1_000_000.0
RESEND = 10.0


@pytest.fixture
def shared(redis):
    url = f"redis://{redis.address}/{1 + uuid.uuid4().int % 14}"
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = redis_client.Redis.from_url(url)
    yield url, prefix, client
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


class Engine:
    """An engine on the shared windows, its own clock and what its sink received."""

    def __init__(self, url: str, prefix: str, settings: dict | None = None, **rule: object) -> None:
        self.now = T0
        self.sent: list[tuple[str, int, float]] = []
        self.alerts: list = []
        fields: dict[str, object] = {"actions": [self.receive], **rule}
        self.engine = AlertEngine(
            [sentinel_rule(threshold=2, window=600, **fields)],
            windows=RedisWindows(url, prefix=prefix),
            resend_interval=RESEND,
            clock=lambda: self.now,
            **(settings or {}),
        )

    def receive(self, alert) -> None:
        status = "resolved" if alert.resolved_at else "firing"
        self.sent.append((status, alert.count, alert.started_at))
        self.alerts.append(alert)

    def errors(self, n: int, account: str = "acc_1", first: int = 0) -> None:
        for i in range(first, first + n):
            self.engine.observe(event(f"{i:016x}", ts=self.now, account_id=account))

    def tick(self, at: float) -> None:
        self.now = at
        self.engine.tick(at)


def test_an_alert_whose_owner_died_before_sending_is_sent_by_another_engine(shared):
    url, prefix, _ = shared
    dead = Engine(url, prefix)
    dead.errors(3)  # the 3rd error fires and takes the claim; then the process is killed
    assert dead.engine.firing  # (its send still queued: nothing reached the receiver)
    heir = Engine(url, prefix)
    heir.errors(2, first=3)  # its errors count in the shared window, but the claim is taken
    heir.tick(T0 + 1)
    assert heir.sent == []  # the owner may still be alive: not adopted yet
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.sent == [("firing", 3, T0)]  # the same alert: its count and start
    assert heir.engine.adopted == 1
    (alert,) = heir.alerts
    assert alert.group == {"account_id": "acc_1"} and len(alert.error_ids) == 3
    heir.tick(T0 + 3 * RESEND + 2)
    assert [s for s, *_ in heir.sent] == ["firing", "firing"]  # it re-sends, as an owner does
    heir.tick(T0 + 700)  # the window cleared: the heir resolves it
    assert heir.sent[-1][0] == "resolved"


def test_a_live_owner_keeps_its_alert(shared):
    url, prefix, _ = shared
    owner, other = Engine(url, prefix), Engine(url, prefix)
    owner.errors(3)
    for at in range(1, 80, 5):  # the owner re-sends every 10 s; the other ticks as often
        owner.tick(T0 + at)
        other.tick(T0 + at)
    assert other.sent == [] and other.engine.adopted == 0
    assert len(owner.sent) == 1 + 7  # the first send and one re-send per 10 s


def test_an_owner_back_after_its_alert_was_adopted_stops_sending_it(shared):
    url, prefix, _ = shared
    paused, heir = Engine(url, prefix), Engine(url, prefix)
    paused.errors(3)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 1
    paused.tick(T0 + 2 * RESEND + 2)  # back: its re-send finds another owner
    assert paused.engine.firing == [] and len(paused.sent) == 1
    heir.tick(T0 + 3 * RESEND + 2)
    assert len(heir.sent) == 2  # the heir alone goes on


def test_a_resolved_alert_leaves_nothing_to_adopt(shared):
    url, prefix, client = shared
    owner = Engine(url, prefix)
    owner.errors(3)
    owner.tick(T0 + 700)
    assert owner.sent[-1][0] == "resolved"
    heir = Engine(url, prefix)
    heir.tick(T0 + 800)
    assert heir.sent == []
    assert not client.exists(prefix + "firing:" + owner.alerts[0].key)


def test_an_engine_without_the_rule_leaves_the_alert_to_one_with_it(shared):
    url, prefix, _ = shared
    owner = Engine(url, prefix)
    owner.errors(3)
    stranger = Engine(url, prefix, name="another-rule")
    stranger.tick(T0 + 2 * RESEND + 1)
    assert stranger.sent == [] and stranger.engine.adopted == 0
    heir = Engine(url, prefix)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 1


def test_unreadable_states_are_dropped_and_every_key_expires(shared):
    url, prefix, client = shared
    windows = RedisWindows(url, prefix=prefix)
    group = "payment-business-burst"
    hostile = [
        "{not json",
        '{"rule":"payment-business-burst","alert":{"key":"k2","started_at":NaN}}',
    ]
    for i, state in enumerate(hostile):
        won = windows.claim_and_hold(group, f"k{i + 1}", 600.0, state, T0, "someone", 3600.0, T0)
        assert won == (True, None)
    owner = Engine(url, prefix)
    owner.errors(3)
    heir = Engine(url, prefix)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 1 and heir.sent == [("firing", 3, T0)]  # the real one
    assert not client.exists(prefix + "firing:k1") and not client.exists(prefix + "firing:k2")
    for name in client.scan_iter(match=prefix + "*"):
        assert client.pttl(name) > 0, name  # -1 would mean "kept for ever"


def test_a_state_that_reads_back_but_cannot_be_sent_does_not_stop_the_others(shared):
    url, prefix, _ = shared
    owner = Engine(url, prefix)
    owner.errors(3)
    owner.errors(3, account="acc_2", first=10)
    heir = Engine(url, prefix, actions=["broken"])
    heir.engine.sinks["broken"] = Broken(heir.receive)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 2 and len(heir.sent) == 1  # acc_1 failed, acc_2 went out


class Broken:
    """A sink that fails on one alert (as a formatting bug would) and passes the others."""

    def __init__(self, receive) -> None:
        self.receive = receive

    def send(self, alert) -> None:
        if alert.group == {"account_id": "acc_1"}:
            raise IndexError("a sink failed on this alert")
        self.receive(alert)

    def close(self) -> None:
        pass


def test_alerts_of_rules_this_engine_lacks_do_not_hide_its_own(shared):
    url, prefix, _ = shared
    other = Engine(url, prefix, name="another-rule")
    for i in range(120):  # more than one scan's worth of alerts nobody here can adopt
        other.errors(3, account=f"acc_{i}", first=10 * i)
    owner = Engine(url, prefix)
    owner.errors(3)
    heir = Engine(url, prefix)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 1 and heir.sent == [("firing", 3, T0)]


def test_the_owners_interval_decides_when_its_alert_is_an_orphan(shared):
    url, prefix, _ = shared
    owner = Engine(url, prefix)  # re-sends every 10 s: adoptable 20 s after its last send
    owner.errors(3)
    eager = Engine(url, prefix)
    eager.engine.resend_interval = 1.0  # its own alerts would be orphans after 5 s
    eager.tick(T0 + 6)
    assert eager.engine.adopted == 0
    eager.tick(T0 + 2 * RESEND + 1)
    assert eager.engine.adopted == 1


def test_an_engine_that_stops_leaves_its_alerts_to_be_adopted_at_once(shared):
    url, prefix, _ = shared
    owner = Engine(url, prefix)
    owner.errors(3)
    owner.engine.close()
    heir = Engine(url, prefix)
    heir.tick(T0 + 1)  # no need to wait for the deadline
    assert heir.engine.adopted == 1 and heir.sent == [("firing", 3, T0)]


def test_an_alert_fired_again_after_its_cooldown_keeps_its_first_start(shared):
    url, prefix, _ = shared
    first = Engine(url, prefix, cooldown=0.3)  # the claim (Redis time) outlives 0.3 s only
    first.errors(3)
    time.sleep(0.5)
    second = Engine(url, prefix, cooldown=0.3)
    second.now = T0 + 40
    second.errors(1, first=3)  # the window is still over: it wins the claim again
    assert second.sent == [("firing", 4, T0)]  # one alert for receivers: the same start
    first.tick(T0 + RESEND + 1)  # at its re-send, the first finds the alert taken over
    assert first.engine.firing == [] and len(first.sent) == 1


def test_a_new_burst_long_after_an_unadopted_alert_has_its_own_start(shared):
    url, prefix, _ = shared
    gone = Engine(url, prefix, cooldown=0.3)
    gone.errors(3)  # fires at T0, then dies: nobody with the rule ticks to adopt it
    time.sleep(0.5)
    later = Engine(url, prefix, cooldown=0.3)
    later.now = T0 + 2000  # past the window (600 s): a new episode, not the same alert
    later.errors(3, first=100)
    assert later.sent == [("firing", 3, T0 + 2000)]


def test_a_client_that_decodes_replies_works_too(shared):
    url, prefix, _ = shared
    decoding = redis_client.Redis.from_url(url, decode_responses=True)
    owner = Engine(url, prefix)
    owner.errors(3)
    heir = Engine(url, prefix)
    heir.engine.windows = heir.engine._handover = RedisWindows(url, prefix=prefix, client=decoding)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 1 and not heir.engine.windows.degraded
    decoding.close()


def test_the_claim_and_the_alert_are_stored_together(shared):
    url, prefix, client = shared
    windows = RedisWindows(url, prefix=prefix)
    args = ("g", "k", 600.0, "{}", T0, "me", 3600.0, T0)
    assert windows.claim_and_hold(*args) == (True, None)
    assert client.exists(prefix + "claim:k") and client.exists(prefix + "firing:k")
    assert windows.claim_and_hold("g", "k", 600.0, "{}", T0, "you", 3600.0, T0) == (False, None)
    assert client.hget(prefix + "firing:k", "owner") == b"me"  # a lost claim stores nothing


# -- forged states: what another client of the Redis can and cannot make an engine send ------
KEY = "k" * 32  # a hand-over state key (HMAC)
JAEGER = {"jaeger_template": "http://jaeger:16686/trace/{trace_id}"}
RULE = "payment-business-burst"


def forged(alert_key: str, rule: str | None = RULE, **fields: object) -> str:
    """A state as another Redis client could write it: the right shape, its own words."""
    alert: dict[str, object] = {
        "key": alert_key, "name": "PAGE-EVERYONE", "kind": "BUSINESS", "resource": "payment",
        "error_type": "T", "code": "c", "service": "svc", "reason": "r" * 60_000,
        "stack": "", "group": {"account_id": "acc_9"}, "started_at": T0, "count": 7,
        "score": None, "keep_stack": True, "policy": True, "trace_ids": ["../../x?y=1"],
        "error_ids": ["00ab", "not hex"], "error_types": ["T"],
    }  # fmt: skip
    alert.update(fields)
    return json.dumps({"rule": rule, "alert": alert})


def plant(url: str, prefix: str, key: str, state: str, group: str = RULE) -> None:
    windows = RedisWindows(url, prefix=prefix)
    assert windows.claim_and_hold(group, key, 600.0, state, T0, "someone", 3600.0, T0)[0]


def test_an_adopted_alert_says_only_what_the_adopting_rule_says(shared):
    url, prefix, _ = shared
    key = f"{RULE}\x1facc_9"
    plant(url, prefix, key, forged(key))
    heir = Engine(url, prefix, settings=JAEGER)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.engine.adopted == 1 and heir.engine.refused == 0
    (alert,) = heir.alerts
    body = alert.to_alertmanager(T0, 300.0)
    assert body["labels"] == {
        "alertname": RULE, "severity": "warning", "kind": "BUSINESS", "resource": "payment",
        "error_type": "T", "service": "svc", "account_id": "acc_9",
    }  # fmt: skip
    assert body["annotations"]["description"] == heir.engine._reason(heir.engine.rules[0])
    assert "jaeger" not in body["annotations"] and "generatorURL" not in body  # not hex
    assert body["annotations"]["error_ids"] == "00ab" and not alert.policy and not alert.stack
    assert all(len(v) <= 256 for v in body["labels"].values())


@pytest.mark.parametrize(
    ("key", "group", "fields"),
    [
        (f"{RULE}\x1facc_9", RULE, {"group": {"account_id": "acc_9", "team": "ops"}}),
        (f"{RULE}\x1facc_9", RULE, {"group": {"account_id": "acc_8"}}),  # not the key's
        (f"{RULE}\x1facc_9", RULE, {"kind": "FATAL"}),  # a kind the rule does not count
        (f"{RULE}\x1facc_9", RULE, {"kind": "BUSINESS\nx"}),
        (f"{RULE}\x1facc_9", RULE, {"key": f"{RULE}\x1facc_8"}),  # not where it is held
        ("policy\x1fBUSINESS\x1fpayment\x1fT\x1fc", "\x1fpolicy", {"group": {}}),  # no policy
        ("policy\x1fFATAL\x1fpayment", "\x1fpolicy", {"group": {}}),  # not a cluster's key
    ],
)
def test_a_state_that_cannot_be_its_keys_alert_is_dropped_and_counted(shared, key, group, fields):
    url, prefix, client = shared
    rule = None if group == "\x1fpolicy" else RULE
    plant(url, prefix, key, forged(key, rule=rule, **fields), group=group)
    heir = Engine(url, prefix, settings=JAEGER)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.sent == [] and heir.engine.adopted == 0 and heir.engine.refused == 1
    assert not client.exists(prefix + "firing:" + key)


def test_a_policy_state_is_rebuilt_from_its_key_and_the_kind_policy(shared):
    url, prefix, _ = shared
    key = "policy\x1fFATAL\x1f/pay\x1fDiskFull\x1fE_DISK"
    state = forged(key, rule=None, name="x", kind="FATAL", group={"a": "b"}, stack="s" * 900)
    plant(url, prefix, key, state, group="\x1fpolicy")
    heir = Engine(url, prefix, settings=JAEGER)
    heir.engine.default_actions = (heir.receive,)  # where policy alerts go
    heir.tick(T0 + 2 * RESEND + 1)
    (alert,) = heir.alerts
    assert alert.labels() == {
        "alertname": "tracectx_fatal_error", "severity": "critical", "kind": "FATAL",
        "resource": "/pay", "error_type": "DiskFull", "code": "E_DISK", "service": "svc",
    }  # fmt: skip
    assert alert.reason == "FATAL errors alert immediate by policy" and alert.stack == ""


def test_with_a_key_only_states_tagged_with_it_are_adopted(shared):
    url, prefix, client = shared
    owner = Engine(url, prefix, settings={"state_key": KEY})
    owner.errors(3)
    real = owner.alerts[0].key
    tagged = client.hget(prefix + "firing:" + real, "state").decode()
    assert tagged.startswith("hmac-sha256:")
    for account, state in [
        ("acc_7", forged(f"{RULE}\x1facc_7", group={"account_id": "acc_7"})),  # untagged
        ("acc_8", tagged.replace(real, f"{RULE}\x1facc_8").replace("acc_1", "acc_8")),
        ("acc_9", tagged.replace('"count":3', '"count":9')),  # tampered
        ("acc_5", "hmac-sha256:x"),  # shorter than a tag: dropped, the tick goes on
    ]:
        plant(url, prefix, f"{RULE}\x1f{account}", state)
    other = Engine(url, prefix, settings={"state_key": "another key, 16+ bytes"})
    other.errors(3, account="acc_6", first=50)
    heir = Engine(url, prefix, settings={"state_key": KEY})
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.sent == [("firing", 3, T0)] and heir.alerts[0].group == {"account_id": "acc_1"}
    assert heir.engine.adopted == 1 and heir.engine.refused == 5


def test_a_state_too_large_to_be_ours_is_not_read(shared):
    url, prefix, client = shared
    key = f"{RULE}\x1facc_9"
    plant(url, prefix, key, "{" + " " * (5 * 65536) + "}")
    client.zadd(prefix + "firing-by:" + RULE, {"x" * 100_000: 0})
    heir = Engine(url, prefix)
    heir.tick(T0 + 2 * RESEND + 1)
    assert heir.sent == [] and heir.engine.refused == 1  # the long key is never listed


def test_a_short_state_key_is_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        AlertEngine([], state_key="short")


def test_a_forged_earlier_state_does_not_move_a_new_alerts_start(shared):
    url, prefix, _ = shared
    key = f"{RULE}\x1facc_1"
    windows = RedisWindows(url, prefix=prefix)  # held within the window, but not this rule's
    windows.claim_and_hold(RULE, key, 0.001, forged(key, rule="x", started_at=1.0), T0 + 60,
                           "someone", 3600.0, T0)  # fmt: skip
    time.sleep(0.1)  # its claim has run out
    engine = Engine(url, prefix)
    engine.errors(3)
    assert engine.sent == [("firing", 3, T0)]


def test_an_old_tagged_state_written_back_does_not_move_a_new_alerts_start(shared):
    """The signed state carries the deadline it was held until: an old episode's state (a
    valid tag) planted again as held now cannot pass for this key's firing alert."""
    url, prefix, client = shared
    owner = Engine(url, prefix, settings={"state_key": KEY})
    owner.errors(3)
    key = owner.alerts[0].key
    old = client.hget(prefix + "firing:" + key, "state").decode()
    for stored in client.scan_iter(match=prefix + "*"):  # that episode is long over
        client.delete(stored)
    later = T0 + 100_000
    windows = RedisWindows(url, prefix=prefix)
    assert windows.claim_and_hold(RULE, key, 0.001, old, later + 60, "someone", 3600.0, later)[0]
    time.sleep(0.1)  # its claim has run out
    engine = Engine(url, prefix, settings={"state_key": KEY})
    engine.now = later
    engine.errors(3)
    assert engine.sent == [("firing", 3, later)]
