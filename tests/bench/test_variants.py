import pytest

from promptembedder.bench.variants import DEFAULT_VARIANTS, VARIANTS, parse_variants
from promptembedder.training.config import Method, apply_overrides, config_from_dict, load_config


@pytest.mark.parametrize("base", ["defaults", "full"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_is_a_valid_config(name, base):
    """On the defaults and on the packaged recipe (whose entropy floor the baselines must drop)."""
    start = {} if base == "defaults" else load_config("full", []).to_dict()
    config = config_from_dict(apply_overrides(start, list(VARIANTS[name].overrides)))
    assert config.method is (
        {"lora": Method.LORA, "prompt-tuning": Method.PROMPT_TUNING}.get(name, Method.PROMPTEMBEDDER)
    )


def test_the_default_set_covers_the_issue_and_lora_is_the_baseline():
    names = [v.name for v in parse_variants(None)]
    assert names == list(DEFAULT_VARIANTS) and names[0] == "lora"
    assert [v.name for v in parse_variants("pe-cached, lora,pe-cached")] == ["pe-cached", "lora"]
    with pytest.raises(ValueError, match="unknown variant"):
        parse_variants("lora,nope")
