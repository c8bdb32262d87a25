import dataclasses

import pytest

from cartoongan.errors import InvalidInput
from cartoongan.training.config import TrainConfig, from_dict, load_yaml, parse_overrides


def test_defaults_follow_the_design():
    c = TrainConfig()
    assert (c.arch, c.init_epochs, c.batch_size, c.content_weight, c.gan_loss) == (
        "cartoongan-bn", 10, 16, 10.0, "lsgan"
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.batch_size = 4


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("arch: cartoongan-lite\nbatch_size: 8\nbetas: [0.9, 0.99]\n")
    config = load_yaml(path).replace(**parse_overrides(["batch_size=4", "amp=false", "content_weight=5"]))
    assert (config.arch, config.batch_size, config.betas, config.amp, config.content_weight) == (
        "cartoongan-lite", 4, (0.9, 0.99), False, 5.0
    )  # fmt: skip
    assert from_dict(config.to_dict()) == config
    assert config.hash() != TrainConfig().hash()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"batch_sise": 4}, r"unknown config fields \['batch_sise'\]"),
        ({"batch_size": "many"}, "batch_size.*expected int"),
        ({"betas": [0.5]}, "betas"),
        ({"amp": "maybe"}, "amp.*expected bool"),
    ],
)
def test_bad_values_are_clear_errors(values, message):
    with pytest.raises(InvalidInput, match=message):
        from_dict(values)


def test_validation_and_bad_files(tmp_path):
    with pytest.raises(InvalidInput, match="crop_size must be a multiple of 4"):
        TrainConfig(crop_size=30).validate()
    with pytest.raises(InvalidInput, match="unknown architecture"):
        TrainConfig(arch="unet").validate()
    with pytest.raises(InvalidInput, match="expected KEY=VALUE"):
        parse_overrides(["batch_size"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(InvalidInput, match="expected a mapping"):
        load_yaml(bad)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
