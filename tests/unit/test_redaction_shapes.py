"""Secret names and values as real configurations spell them: run-together keys, and values
that are credentials whatever their key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.bounds import BUDGET, bounded
from tracectx.redaction import is_sensitive, looks_secret, redact

# Names of secrets in real configs (env vars, YAML keys, JSON fields), as their tools spell them.
SECRET_NAMES = [
    # run-together: a marker inside, not at the end
    "secretkey", "passwordhash", "privatekeypem", "apikeyid", "passwordsalt", "tokenvalue",
    "secretvalue", "clientsecretexpiry", "sessionkey",
    # AWS
    "AWS_SECRET_ACCESS_KEY", "aws_session_token", "secretAccessKey", "awssecretaccesskey",
    # GCP
    "private_key", "private_key_id", "privateKeyId", "client_secret",
    "GOOGLE_APPLICATION_CREDENTIALS", "credentials_json", "serviceaccountcredentials",
    # Stripe
    "STRIPE_SECRET_KEY", "stripe_api_key", "stripeSecretKey", "STRIPE_WEBHOOK_SECRET",
    "webhooksigningsecret",
    # GitHub
    "GITHUB_TOKEN", "GH_TOKEN", "github_personal_access_token", "githubtoken",
    # JWT and OAuth
    "jwt", "JWT_SECRET", "jwtSecret", "jwtsecretkey", "access_token", "refreshToken",
    "refreshtokenhash", "id_token", "oauth_client_secret", "oauthtokensecret",
    "Authorization", "bearertoken",
    # databases
    "DB_PASSWORD", "dbpassword", "POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "redis_passwd",
    "mongopassphrase",
    # lists of tokens: ``tokens`` is a count only after a count word
    "access_tokens", "refresh_tokens", "oauth_tokens", "api_tokens", "github_tokens",
    "accessTokens", "tokens", "sessions_token",
]  # fmt: skip

# Keys that contain a marker's letters but hold no secret: counts, NLP, people, flags.
NOT_SECRETS = [
    "tokenizer", "tokenizer_name", "gen_ai.usage.input_tokens", "output_tokens", "max_tokens",
    "total_tokens", "secretary", "secretary_email", "business_name", "spinner", "pinned_at",
    "author", "authority", "cardinality", "account_id", "passed", "compass", "classname",
    "cache_read_input_tokens", "completionTokens", "prompt_tokens", "cached_tokens",
    "sessions_active", "tokenbucket_capacity", "token_bucket", "passwordless_enabled",
]  # fmt: skip


@pytest.mark.parametrize("key", SECRET_NAMES)
def test_common_secret_names_are_sensitive(key):
    assert is_sensitive(key)


@pytest.mark.parametrize("key", NOT_SECRETS)
def test_words_that_only_contain_a_markers_letters_are_not(key):
    assert not is_sensitive(key)


# Values that are credentials, whatever key carries them. Fake, but of the real shapes.
SECRET_VALUES = [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Bearer 2YotnFZFEjr1zCsicMWpAA",
    "bearer ya29.a0AfH6SMBx3k9",
    "Basic dXNlcjpwYXNzd29yZA==",
    "request failed with Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_test_51HxYzAbCdEfGhIjKlMn",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLSYn",
    "AKIAIOSFODNN7EXAMPLE",
    "postgres://app:s3cr3t@db.internal:5432/orders",
    "redis://:hunter2@cache:6379/0",
    "https://user:pa55@example.com/path",
    "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "glpat-xxxxxxxxxxxxxxxxxxxx",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...",
    "-----BEGIN PRIVATE KEY-----",
]

ORDINARY_VALUES = [
    "acc_123", "https://api.example.com/v1/charges?id=7", "ssh://git@github.com/org/repo",
    "token validation failed", "Basic authentication required", "bearer token missing",
    "card declined by issuer", "ASIA-PACIFIC", "task-runner-7", "eyJ", "skill-level",
    "see https://example.com/a@b", "user@example.com",
]  # fmt: skip


@pytest.mark.parametrize("value", SECRET_VALUES)
def test_a_credential_value_is_masked_whatever_its_key(value):
    assert looks_secret(value)
    assert redact({"note": value, "nested": {"list": [value]}}) == {
        "note": "[REDACTED]",
        "nested": {"list": ["[REDACTED]"]},
    }


@pytest.mark.parametrize("value", ORDINARY_VALUES)
def test_ordinary_values_are_kept(value):
    assert not looks_secret(value)
    assert redact({"note": value}) == {"note": value}


@BUDGET
@given(
    value=st.text(max_size=200)
    | st.builds(
        lambda part, n: part * n,
        st.sampled_from(["eyJ", "sk-", "xoxb-", "bearer ", "a://:", "glpat-", "ghp_", " ", "a"]),
        st.integers(1, 20_000),
    )
)
def test_the_value_scan_is_linear_on_hostile_text(value):
    with bounded():
        looks_secret(value + "://")
        looks_secret("Bearer " + value)
