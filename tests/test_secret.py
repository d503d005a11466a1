"""Secrets never show themselves."""

from __future__ import annotations

import pickle

import pytest

from tickactors import Secret
from tickactors._secret import redact

TOKEN = "tok-SECRET-77d1e0"


def test_every_text_form_is_masked():
    s = Secret(TOKEN)
    forms = [repr(s), str(s), f"{s}", f"{s!r}", "{}".format(s), "%s" % (s,)]  # noqa: UP031, UP032
    forms += [repr([s]), repr({"t": s})]
    for text in forms:
        assert TOKEN not in text
    assert s.reveal() == TOKEN


def test_equality_and_immutability():
    assert Secret(TOKEN) == Secret(TOKEN)
    assert Secret(TOKEN) != Secret("other")
    assert Secret(Secret(TOKEN)) == Secret(TOKEN)
    with pytest.raises(AttributeError):
        Secret(TOKEN)._value = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Secret(5)  # type: ignore[arg-type]


def test_cannot_be_pickled():
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))


def test_redact_masks_every_occurrence():
    assert redact(f"a {TOKEN} b {TOKEN}", Secret(TOKEN), None) == "a *** b ***"


def test_redact_masks_the_url_encoded_forms_too():
    token = Secret("a+b/c=d e")
    text = "?token=a%2Bb%2Fc%3Dd+e and a%2Bb%2Fc%3Dd%20e and a+b/c=d e"
    assert redact(text, token) == "?token=*** and *** and ***"
