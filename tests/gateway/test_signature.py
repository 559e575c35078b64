"""X-Twilio-Signature: Twilio's own published example, ports, proxies, shared keys."""

from __future__ import annotations

import pytest

from nsaudio.gateway.signature import SignatureChecker, signature, url_variants

TOKEN = "12345"


def test_twilio_documented_example():
    # The example of Twilio's security guide (a POST with form parameters): the same
    # algorithm signs a WebSocket upgrade, with no parameters.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}  # fmt: skip
    assert signature(TOKEN, url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_url_variants_add_and_remove_the_default_port():
    assert url_variants("wss://gw.example.com/media") == [
        "wss://gw.example.com/media", "wss://gw.example.com:443/media"]  # fmt: skip
    assert url_variants("wss://gw.example.com:443/m?x=1") == [
        "wss://gw.example.com:443/m?x=1", "wss://gw.example.com/m?x=1"]  # fmt: skip
    assert url_variants("ws://127.0.0.1:8080/m") == ["ws://127.0.0.1:8080/m"]


def _headers(sig, host="127.0.0.1:8080", **more):
    h = {"Host": host, **more}
    if sig is not None:
        h["X-Twilio-Signature"] = sig
    return h


def test_the_url_is_rebuilt_from_the_host_or_taken_from_public_url():
    checker = SignatureChecker(TOKEN)
    good = signature(TOKEN, "wss://127.0.0.1:8080/media")
    assert checker.check("/media", _headers(good))
    assert checker.check("/media", _headers(signature(TOKEN, "ws://127.0.0.1:8080/media")))
    assert not checker.check("/other", _headers(good))  # signed for another path
    assert not checker.check("/media", _headers(good, host="127.0.0.1:9999"))
    assert not checker.check("/media", _headers(None))  # missing
    assert not checker.check("/media", _headers(""))
    assert not checker.check("/media", _headers(signature("54321", "wss://127.0.0.1:8080/media")))

    proxied = SignatureChecker(TOKEN, public_url="wss://gw.example.com/twilio/")
    sig = signature(TOKEN, "wss://gw.example.com/twilio/media")
    assert proxied.check("/media", _headers(sig, host="10.0.0.7:8080"))
    assert proxied.check(
        "/media", _headers(signature(TOKEN, "wss://gw.example.com:443/twilio/media"))
    )
    assert not proxied.check("/media", _headers(good))  # the Host header no longer counts


def test_a_query_string_is_part_of_the_signed_url():
    checker = SignatureChecker(TOKEN, public_url="wss://gw.example.com")
    assert not checker.check("/media?x=1", _headers(signature(TOKEN, "wss://gw.example.com/media")))
    assert checker.check("/media?x=1", _headers(signature(TOKEN, "wss://gw.example.com/media?x=1")))


def test_a_webhooks_rule_signs_with_the_shared_key():
    url = "wss://gw.example.com/media"
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=KS123,algorithm=HMAC_SHA256"}
    sig = signature("shared-secret", url, None, "HMAC_SHA256")
    with_key = SignatureChecker(
        TOKEN, public_url="wss://gw.example.com", shared_key="shared-secret"
    )
    assert with_key.check("/media", _headers(sig, **settings))
    assert not with_key.check("/media", _headers(signature(TOKEN, url), **settings))
    without = SignatureChecker(TOKEN, public_url="wss://gw.example.com")
    assert not without.check("/media", _headers(sig, **settings))
    odd = {"X-Twilio-Webhooks-Signature-Settings": "key=KS1,algorithm=MD5"}
    assert not with_key.check("/media", _headers(sig, **odd))


def test_secrets_stay_out_of_the_repr():
    checker = SignatureChecker("tok-very-secret", shared_key="shh-secret")
    assert "secret" not in repr(checker)
    with pytest.raises(ValueError):
        SignatureChecker("")
