import pytest

from headseg.function.config import MAX_DOWNLOAD_WORKERS, Config, OssSignature, UrlMode
from headseg.function.errors import ConfigError

BASE = {"INPUT_PREFIX": "incoming/", "OUTPUT_PREFIX": "heads/"}


def test_defaults_from_minimal_env():
    config = Config.from_env(BASE)
    assert (config.input_prefix, config.output_prefix) == ("incoming/", "heads/")
    assert config.url_mode is UrlMode.INTERNAL
    assert config.oss_signature is OssSignature.V4
    assert config.return_form is None
    assert config.oss_url == "https://oss-cn-shanghai-internal.aliyuncs.com"
    assert config.oss_public_url == "https://oss-cn-shanghai.aliyuncs.com"
    assert config.imageseg_url == "https://imageseg.cn-shanghai.aliyuncs.com"
    assert (config.min_image_side, config.max_image_side, config.max_image_bytes) == (33, 1999, 3 * 1024 * 1024)


def test_every_variable_is_parsed():
    env = {
        **BASE,
        "RETURN_FORM": "mask",
        "URL_MODE": "PUBLIC",
        "OSS_SIGNATURE": "v1",
        "OSS_ENDPOINT": "http://127.0.0.1:9000",
        "IMAGESEG_ENDPOINT": "http://127.0.0.1:9001",
        "SIGNED_URL_EXPIRES": "120",
        "MAX_OBJECT_BYTES": "1000",
        "TIME_MARGIN": "1.5",
    }
    config = Config.from_env(env)
    assert config.return_form == "mask"
    assert config.url_mode is UrlMode.PUBLIC
    assert config.oss_signature is OssSignature.V1
    assert config.oss_url == "http://127.0.0.1:9000"
    assert config.imageseg_url == "http://127.0.0.1:9001"
    assert (config.signed_url_expires, config.max_object_bytes, config.time_margin) == (120, 1000, 1.5)


@pytest.mark.parametrize(
    "input_prefix, output_prefix",
    [("incoming/", "incoming/heads/"), ("", "heads/"), ("heads/in/", "heads/"), ("a", "aa")],
)
def test_a_config_that_would_loop_refuses_to_start(input_prefix, output_prefix):
    with pytest.raises(ConfigError) as error:
        Config.from_env({"INPUT_PREFIX": input_prefix, "OUTPUT_PREFIX": output_prefix})
    assert "infinite loop" in error.value.message


def test_all_problems_are_reported_at_once_with_variable_names():
    with pytest.raises(ConfigError) as error:
        Config.from_env({"INPUT_PREFIX": "in/", "URL_MODE": "ftp", "SIGNED_URL_EXPIRES": "soon"})
    message = error.value.message
    assert "URL_MODE='ftp': expected one of internal, public, advance" in message
    assert "SIGNED_URL_EXPIRES='soon': expected a whole number" in message
    assert "OUTPUT_PREFIX is not set" in message


def test_out_of_range_values_are_refused():
    with pytest.raises(ConfigError, match="SIGNED_URL_EXPIRES=5 must be between 30 and 3600"):
        Config.from_env({**BASE, "SIGNED_URL_EXPIRES": "5"})
    with pytest.raises(ConfigError, match="IMAGESEG_ENDPOINT 'imageseg.local' must be a URL"):
        Config.from_env({**BASE, "IMAGESEG_ENDPOINT": "imageseg.local"})


def test_download_workers_stay_within_what_memory_was_measured_for():
    assert Config.from_env({**BASE, "DOWNLOAD_WORKERS": str(MAX_DOWNLOAD_WORKERS)}).download_workers == 32
    for workers in (MAX_DOWNLOAD_WORKERS + 1, 0):
        message = rf"DOWNLOAD_WORKERS={workers} must be between 1 and 32: .* one memory budget"
        with pytest.raises(ConfigError, match=message):
            Config.from_env({**BASE, "DOWNLOAD_WORKERS": str(workers)})


def test_scratch_defaults_inside_the_output_prefix_and_must_not_overlap_the_input():
    assert Config.from_env(BASE).scratch == "heads/.scratch/"
    assert Config.from_env({**BASE, "SCRATCH_PREFIX": "tmp/headseg/"}).scratch == "tmp/headseg/"
    with pytest.raises(ConfigError, match="SCRATCH_PREFIX 'incoming/tmp/' overlaps INPUT_PREFIX"):
        Config.from_env({**BASE, "SCRATCH_PREFIX": "incoming/tmp/"})


@pytest.mark.parametrize("raw", ["msk", "masks", "rgba", "foo"])
def test_return_form_is_mask_or_empty(raw):
    """SegmentHead takes any ReturnForm but `mask` silently as RGBA, so a typo is refused, naming what is valid;
    the same rule holds for a Config built from the environment (FC) and one built by a command."""
    with pytest.raises(ConfigError, match=rf"RETURN_FORM '{raw}' must be mask \(masks\), or empty for RGBA cutouts"):
        Config.from_env({**BASE, "RETURN_FORM": raw})
    with pytest.raises(ConfigError, match=f"RETURN_FORM '{raw}' must be mask"):
        Config(input_prefix="incoming/", output_prefix="heads/", return_form=raw)
    assert Config.from_env({**BASE, "RETURN_FORM": "MASK"}).return_form == "mask"
    assert Config.from_env({**BASE, "RETURN_FORM": ""}).return_form is None
