from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from otel_xray.detectors.beanstalk import BeanstalkResourceDetector
from tests.detectors.test_detector_ec2 import no_warnings

ENVIRONMENT_CONF = (
    '{"deployment_id":23,"version_label":"app-0f1e-210315","environment_name":"shop-prod"}'
)


def test_environment_file_becomes_service_attributes(
    beanstalk_conf: Callable[[str], object], caplog: pytest.LogCaptureFixture
) -> None:
    beanstalk_conf(ENVIRONMENT_CONF)
    caplog.set_level(logging.DEBUG)

    resource = BeanstalkResourceDetector().detect()

    assert dict(resource.attributes) == {
        "cloud.provider": "aws",
        "cloud.platform": "aws_elastic_beanstalk",
        "service.namespace": "shop-prod",
        "service.version": "app-0f1e-210315",
        "service.instance.id": "23",
    }
    no_warnings(caplog)


def test_constructor_path_overrides_the_environment(tmp_path) -> None:
    conf = tmp_path / "given.conf"
    conf.write_text(ENVIRONMENT_CONF)

    resource = BeanstalkResourceDetector(conf_path=str(conf)).detect()

    assert resource.attributes["service.namespace"] == "shop-prod"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_unreadable_file_is_empty_and_quiet(
    beanstalk_conf: Callable[[str], object], caplog: pytest.LogCaptureFixture, text: str
) -> None:
    beanstalk_conf(text)
    caplog.set_level(logging.DEBUG)

    assert dict(BeanstalkResourceDetector(raise_on_error=True).detect().attributes) == {}
    no_warnings(caplog)


def test_off_beanstalk_is_empty(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    assert dict(BeanstalkResourceDetector().detect().attributes) == {}
    no_warnings(caplog)
