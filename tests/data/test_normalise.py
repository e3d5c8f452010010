import pytest

from steward.data.config import NormaliseConfig
from steward.data.normalise import normalise_text, normalise_token

CFG = NormaliseConfig()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain ascii text", "plain ascii text"),
        ("  many   spaces\n\tand tabs ", "many spaces and tabs"),
        ("<p>Hello <b>world</b></p><br/>&nbsp;bye", "Hello world bye"),
        ("<script>alert(1)</script>kept", "kept"),
        ("fish &amp; chips &lt;3", "fish & chips <3"),
        ("a < b and c > d", "a < b and c > d"),  # comparison signs are not markup
        ("ｆｕｌｌ ｗｉｄｔｈ", "full width"),  # NFKC
        ("ﬁnancial", "financial"),  # ligature
        ("zero\u200bwidth\u200djoin", "zerowidthjoin"),
        ("cafÃ© au lait", "café au lait"),  # mojibake
    ],
)
def test_normalise_table(raw: str, expected: str) -> None:
    assert normalise_text(raw, CFG) == expected


def test_each_step_is_switchable() -> None:
    off = NormaliseConfig(unicode_nfkc=False, fix_mojibake=False, strip_html=False, whitespace=False,
                          strip_invisible=False)
    for raw in ["<b>x</b>  y", "ｆｕｌｌ", "cafÃ©", "a\u200bb"]:
        assert normalise_text(raw, off) == raw
    assert normalise_text("Hello", NormaliseConfig(lowercase=True)) == "hello"


def test_token_normalisation_keeps_markup_characters() -> None:
    assert normalise_token("<b>", CFG) == "<b>"
    assert normalise_token("\u200b", CFG) == ""
    assert normalise_token("ｆｕｌｌ", CFG) == "full"
