"""Secrets never show themselves; ``redact`` masks a secret and leaves the text around it alone."""

from __future__ import annotations

import pickle
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors import Secret
from tickactors._secret import ANYWHERE, MASK, redact

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


def test_redact_skips_none_and_empty_secrets():
    assert redact("all connections", None, Secret("")) == "all connections"


PROSE = (
    "cannot connect: OSError: all attempts to connect to 127.0.0.1:443 failed; "
    "2 connections, token refreshed (generation 3), e.g. retry_in=1.5, 100% done."
)


@pytest.mark.parametrize(
    "secret", ["s", "t", "e", "a", "on", "nn", "co", "ion", "con", "ect", "ref", "tion"]
)
def test_a_short_secret_inside_words_leaves_the_text_alone(secret):
    assert secret in PROSE
    assert redact(PROSE, Secret(secret)) == PROSE


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        # a URL query: value of a parameter, first, middle or last
        ("s", "ws://h:1/p?token=s", "ws://h:1/p?token=***"),
        ("s", "ws://h/?token=s&x=1", "ws://h/?token=***&x=1"),
        ("ab", "GET /?a=1&token=ab&b=2 HTTP/1.1", "GET /?a=1&token=***&b=2 HTTP/1.1"),
        ("x9Z", "'ws://h/?token=x9Z'", "'ws://h/?token=***'"),
        ("s", "https://h/v1#token=s", "https://h/v1#token=***"),
        # a path segment, credentials in a URL
        ("s", "/v1/s/x", "/v1/***/x"),
        ("abc", "/v1/abc?x", "/v1/***?x"),
        ("pw", "nats://user:pw@host:4222", "nats://user:***@host:4222"),
        # headers
        ("s", "Authorization: Bearer s", "Authorization: Bearer ***"),
        ("ab", "Authorization: Bearer ab\r\nHost: h", "Authorization: Bearer ***\r\nHost: h"),
        ("abc", "{'authorization': 'Bearer abc'}", "{'authorization': 'Bearer ***'}"),
        ("s", "Bearer+s", "Bearer+***"),  # form-encoded: + is a space
        # JSON
        ("s", '{"sec":"s","cid":8}', '{"sec":"***","cid":8}'),
        ("ab", '{"password": "ab", "sec": "ab"}', '{"password": "***", "sec": "***"}'),
        ("abc", '{\\"sec\\":\\"abc\\"}', '{\\"sec\\":\\"***\\"}'),
        # reprs and JSON with escapes before the token
        ("s", "'authorize\\n1\\n\\ns'", "'authorize\\n1\\n\\n***'"),
        ("s", "authorize\n1\n\ns", "authorize\n1\n\n***"),
        ("ab", "x\\tab\\r\\nab", "x\\t***\\r\\n***"),
        ("s", "\\x00s \\u000as", "\\x00*** \\u000a***"),
        # whole words and sentences
        ("s", "s", "***"),
        ("s", "the token is s.", "the token is ***."),
        ("on", "on, on; (on) [on] <on> on!", "***, ***; (***) [***] <***> ***!"),
        ("e", "e e\te\ne", "*** ***\t***\n***"),
        ("ab", "x ab=", "x ab="),  # a name before '=', or base64 padding: another token
    ],
)
def test_a_short_secret_as_a_token_is_masked_and_nothing_else(secret, text, expected):
    assert 0 < len(secret) < ANYWHERE
    assert redact(text, Secret(secret)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a.s.b",  # a JWT, a host name: a dot between token characters continues the token
        "1.s",
        "s.io",
        "my_s s_x x-s s-x s~x x~s",  # '_', '-' and '~' continue a token
        "s==",  # base64 padding
        "s=1",
        "%s",  # a format, or the start of an escape
        "s%41 %41s",  # %41 is 'A'
        "cafés séance",  # letters of any script continue a token
        "s2 2s",
    ],
)
def test_a_short_secret_inside_a_larger_token_is_left_alone(text):
    assert redact(text, Secret("s")) == text


def test_every_occurrence_is_masked():
    text = "s x s, 's' ?token=s&sec=s Bearer s /s/ s."
    assert redact(text, Secret("s")) == "*** x ***, '***' ?token=***&sec=*** Bearer *** /***/ ***."


@pytest.mark.parametrize("secret", ["+/=", "a+b", "a/b", "a=", "a b"])
def test_the_url_forms_of_a_short_secret_are_masked_as_tokens(secret):
    plus, plain = quote_plus(secret), quote(secret, safe="")
    text = f"?token={plus}&x=1 /{plain}/ {plus.lower()} {plain.lower()} {secret}"
    assert redact(text, Secret(secret)) == f"?token={MASK}&x=1 /{MASK}/ {MASK} {MASK} {MASK}"
    embedded = f"x{plus}y x{plain}y"
    assert redact(embedded, Secret(secret)) == embedded


def test_escaped_separators_around_a_short_secret_separate():
    # a URL quoted in another URL's query, as a redirect or an error page may do
    text = "next=ws%3A%2F%2Fh%2F%3Ftoken%3Dab%26x%3D1 and %2fab%2f and %20ab%20"
    expected = "next=ws%3A%2F%2Fh%2F%3Ftoken%3D***%26x%3D1 and %2f***%2f and %20***%20"
    assert redact(text, Secret("ab")) == expected
    assert redact("%41ab ab%41 ab%3D", Secret("ab")) == "%41ab ab%41 ab%3D"  # 'A' and '='


def test_a_long_secret_is_masked_wherever_it_is():
    token = "tok-SECRET-77d1e0"
    text = f"x{token}y {token}{token} a.{token}.b {token}=="
    assert redact(text, Secret(token)) == "x***y ****** a.***.b ***=="
    token = "tok+SECRET/77d1e0="
    text = f"?token={quote_plus(token)}&x=1 x{quote(token, safe='')}y {token.lower()}"
    assert redact(text, Secret(token)) == f"?token=***&x=1 x***y {token.lower()}"
    word = "password"  # a long secret that is a word is masked inside words too
    assert len(word) == ANYWHERE
    assert redact("passwords, 1password", Secret(word)) == "***s, 1***"


def test_a_short_secret_does_not_split_a_long_one():
    long, short = Secret("ab-SECRET-1234"), Secret("ab")
    assert redact("ab ab-SECRET-1234 xab", short, long) == "*** *** xab"
    long = Secret("x+ab-SECRET-1234")
    assert redact("x+ab-SECRET-1234", short, long) == "***"


# Separators that end any token on both sides; none is a character a secret is drawn from.
SEPARATORS = [*" \n\t\r,;:\"'&?!#@|*()[]{}<>", "\\", "%20", "%26", "%3F", '":"', ": "]
SECRET_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/="
PARTS = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éßΩ", min_size=1)
#: Letters and digits, with '-', '_', '.' or '~' between them.
WORDS = st.builds(
    lambda first, rest: first + "".join(joiner + part for joiner, part in rest),
    PARTS,
    st.lists(st.tuples(st.sampled_from("-_.~"), PARTS), max_size=2),
)
SHORT = st.text(SECRET_CHARS, min_size=1, max_size=ANYWHERE - 1)


def joined(words, separators):
    return "".join(w + s for w, s in zip(words, separators, strict=True))


def tokens(text):
    """The pieces of ``text`` between separators, by a rule simpler than redact's own."""
    for each in SEPARATORS:
        text = text.replace(each, " ")
    return text.split()


@st.composite
def words_with(draw, secret):
    """Words that hold ``secret`` inside them (never as the whole word), and other words."""
    inside = st.builds(
        lambda before, after: before + secret + after,
        st.one_of(st.just(""), WORDS),
        st.one_of(st.just(""), WORDS),
    ).filter(lambda word: word != secret)
    return draw(st.lists(st.one_of(WORDS, inside).filter(lambda w: w != secret), max_size=12))


@settings(max_examples=200, deadline=None)
@given(st.data(), SHORT)
def test_text_without_a_short_secret_as_a_token_is_unchanged(data, secret):
    words = data.draw(words_with(secret))
    gaps = data.draw(
        st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words))
    )
    text = joined(words, gaps)
    assert secret not in tokens(text)
    assert redact(text, Secret(secret)) == text


@settings(max_examples=200, deadline=None)
@given(st.data(), SHORT)
def test_a_short_secret_as_a_token_is_masked_and_the_other_words_survive(data, secret):
    words = data.draw(words_with(secret))
    at = data.draw(st.lists(st.integers(0, len(words)), min_size=1, max_size=3))
    for index in sorted(at, reverse=True):
        words.insert(index, secret)
    gaps = data.draw(
        st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words))
    )
    result = redact(joined(words, gaps), Secret(secret))
    assert secret not in tokens(result)
    assert result == joined([MASK if w == secret else w for w in words], gaps)


@settings(max_examples=100, deadline=None)
@given(st.data(), st.text(SECRET_CHARS, min_size=ANYWHERE, max_size=40))
def test_a_long_secret_is_masked_even_inside_words(data, secret):
    words = data.draw(words_with(secret))
    gaps = data.draw(
        st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words))
    )
    text = joined(words, gaps)
    result = redact(text, Secret(secret))
    assert secret not in result
    if secret not in text:
        assert result == text
