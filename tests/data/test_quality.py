import pandas as pd

from steward.data.config import QualityConfig
from steward.data.quality import quality_reasons


def test_quality_reasons() -> None:
    frame = pd.DataFrame({"text": [
        "ok",  # too short
        "x" * 60,  # too long
        "12345 67890 !!! ###",  # mostly non-alphabetic
        "This is a perfectly normal English sentence about a refund.",
        "Dies ist ein ganz normaler deutscher Satz über eine Rückerstattung.",
        "Hola amigo",  # too few words to judge language
    ]})
    reasons = quality_reasons(frame, QualityConfig(min_chars=3, max_chars=50, languages=["en"])).tolist()
    assert reasons[:3] == ["too_short", "too_long", "mostly_non_alphabetic"]
    assert reasons[3] == "too_long"  # 60 chars > 50
    reasons = quality_reasons(frame, QualityConfig(min_chars=3, max_chars=500, languages=["en"])).tolist()
    assert reasons[3] == "" and reasons[4] == "wrong_language:de" and reasons[5] == ""
    # language check off by default
    assert quality_reasons(frame, QualityConfig(max_chars=500)).tolist()[4] == ""
