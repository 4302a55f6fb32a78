"""Groups through boto3's xray client: CRUD, validation, persistence, and a group scoping the
service graph, the time series and (through ``group.name``) trace summaries."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from otel_xray_collector.app import Collector

from .conftest import make_config, xray_client_for
from .support.postgres import BOTH_STORES
from .support.segments import UdpSender, http_block, segment
from .test_sampling_rules_api import error_of, unchecked_client

pytestmark = BOTH_STORES

ARN = re.compile(r"^arn:aws:xray:local:000000000000:group/(?P<name>[^/]+)/(?P<id>[A-Z2-7]{52})$")


def window() -> dict[str, float]:
    return {"StartTime": time.time() - 600, "EndTime": time.time() + 60}


def send_traffic(collector: Collector) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two traces: ``shop`` failing on /cart (annotated vip), ``blog`` serving /post fine."""
    shop = segment(
        "shop",
        http=http_block("http://shop/cart", status=500),
        fault=True,
        annotations={"tier": "vip"},
    )
    blog = segment("blog", http=http_block("http://blog/post"))
    UdpSender(collector.udp_address).send([shop, blog])
    assert collector.wait_for_datagrams(2)
    return shop, blog


def service_names(graph: dict[str, Any]) -> set[str]:
    return {s["Name"] for s in graph["Services"] if s.get("Type") != "client"}


def test_group_crud(xray_client: Any) -> None:
    created = xray_client.create_group(
        GroupName="vip",
        FilterExpression='annotation.tier = "vip"',
        InsightsConfiguration={"InsightsEnabled": True, "NotificationsEnabled": False},
        Tags=[{"Key": "team", "Value": "shop"}],
    )["Group"]

    match = ARN.match(created["GroupARN"])
    assert match is not None and match["name"] == "vip"
    assert created["FilterExpression"] == 'annotation.tier = "vip"'
    assert created["InsightsConfiguration"] == {
        "InsightsEnabled": True,
        "NotificationsEnabled": False,
    }
    groups = xray_client.get_groups()["Groups"]
    assert [g["GroupName"] for g in groups] == ["Default", "vip"]
    assert groups[0]["GroupARN"] == "arn:aws:xray:local:000000000000:group/Default"
    assert "FilterExpression" not in groups[0]
    assert xray_client.get_group(GroupName="vip")["Group"] == created
    assert xray_client.get_group(GroupARN=created["GroupARN"])["Group"] == created

    updated = xray_client.update_group(
        GroupARN=created["GroupARN"],
        FilterExpression="fault",
        InsightsConfiguration={"NotificationsEnabled": True},
    )["Group"]
    assert updated["FilterExpression"] == "fault"
    assert updated["GroupARN"] == created["GroupARN"]
    assert updated["InsightsConfiguration"] == {
        "InsightsEnabled": True,
        "NotificationsEnabled": True,
    }
    assert xray_client.get_group(GroupName="vip")["Group"] == updated

    response = xray_client.delete_group(GroupName="vip")
    assert set(response) == {"ResponseMetadata"}  # an empty body
    assert [g["GroupName"] for g in xray_client.get_groups()["Groups"]] == ["Default"]


def test_group_errors(collector: Collector) -> None:
    client = unchecked_client(collector)
    client.create_group(GroupName="errors", FilterExpression="error")

    cases: list[tuple[Any, dict[str, Any], str]] = [
        (client.create_group, {"GroupName": "errors"}, "already exists"),
        (client.create_group, {"GroupName": "Default"}, "reserved"),
        (client.create_group, {"GroupName": "g" * 33}, "GroupName"),
        (client.create_group, {"GroupName": ""}, "GroupName"),
        (client.create_group, {}, "GroupName"),
        (
            client.create_group,
            {"GroupName": "bad", "FilterExpression": 'service("a" AND fault'},
            "position 12",
        ),
        (
            client.create_group,
            {"GroupName": "nested", "FilterExpression": 'group.name = "errors"'},
            "position 0",
        ),
        (
            client.create_group,
            {
                "GroupName": "notify",
                "InsightsConfiguration": {"InsightsEnabled": False, "NotificationsEnabled": True},
            },
            "InsightsEnabled",
        ),
        (client.get_group, {"GroupName": "nope"}, "not found"),
        (client.get_group, {}, "GroupName or GroupARN"),
        (client.get_group, {"GroupARN": "a" * 401}, "GroupARN"),
        (client.get_group, {"GroupName": "errors", "GroupARN": "arn:other"}, "not found"),
        (client.update_group, {"GroupName": "errors", "FilterExpression": "fault AND"}, "position"),
        (client.update_group, {"GroupName": "Default", "FilterExpression": "fault"}, "Default"),
        (client.delete_group, {"GroupName": "Default"}, "Default"),
        (client.delete_group, {"GroupName": "nope"}, "not found"),
        (client.get_groups, {"NextToken": "garbage"}, "NextToken"),
    ]
    for call, kwargs, expected in cases:
        code, message, status = error_of(call, **kwargs)
        assert (code, status) == ("InvalidRequestException", 400), (kwargs, message)
        assert expected in message, (kwargs, message)

    # The failed calls changed nothing.
    assert [g["GroupName"] for g in client.get_groups()["Groups"]] == ["Default", "errors"]
    assert client.get_group(GroupName="errors")["Group"]["FilterExpression"] == "error"


def test_default_group_insights_can_be_updated(xray_client: Any) -> None:
    group = xray_client.update_group(
        GroupName="Default", InsightsConfiguration={"InsightsEnabled": True}
    )["Group"]
    assert group["InsightsConfiguration"]["InsightsEnabled"] is True
    assert xray_client.get_group(GroupName="Default")["Group"] == group


def test_group_limit(xray_client: Any) -> None:
    for number in range(25):
        xray_client.create_group(GroupName=f"g{number}")
    with pytest.raises(ClientError) as raised:
        xray_client.create_group(GroupName="one-too-many")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


def test_a_group_filters_the_service_graph(collector: Collector, xray_client: Any) -> None:
    send_traffic(collector)
    group = xray_client.create_group(GroupName="failing", FilterExpression="fault")["Group"]

    everything = xray_client.get_service_graph(**window())
    by_name = xray_client.get_service_graph(**window(), GroupName="failing")
    by_arn = xray_client.get_service_graph(**window(), GroupARN=group["GroupARN"])
    default = xray_client.get_service_graph(**window(), GroupName="Default")

    assert service_names(everything) == {"shop", "blog"}
    assert service_names(by_name) == {"shop"}
    assert by_arn["Services"] == by_name["Services"]
    assert service_names(default) == {"shop", "blog"}
    shop = next(s for s in by_name["Services"] if s["Name"] == "shop")
    assert shop["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    # A group graph's statistics are those of the whole graph for the services it keeps.
    whole_shop = next(s for s in everything["Services"] if s["Name"] == "shop")
    assert shop["SummaryStatistics"] == whole_shop["SummaryStatistics"]

    # Updating the expression re-scopes the graph at once.
    xray_client.update_group(GroupName="failing", FilterExpression='service("blog")')
    assert service_names(xray_client.get_service_graph(**window(), GroupName="failing")) == {"blog"}

    with pytest.raises(ClientError) as raised:
        xray_client.get_service_graph(**window(), GroupName="nope")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


def test_a_group_scopes_time_series_and_trace_summaries(
    collector: Collector, xray_client: Any
) -> None:
    shop, blog = send_traffic(collector)
    group = xray_client.create_group(GroupName="vip", FilterExpression='annotation.tier = "vip"')[
        "Group"
    ]

    def series(**scope: Any) -> int:
        points = xray_client.get_time_series_service_statistics(
            **window(), EntitySelectorExpression='service("blog")', **scope
        )["TimeSeriesServiceStatistics"]
        return sum(p["ServiceSummaryStatistics"]["TotalCount"] for p in points)

    assert series() == 1
    assert series(GroupName="vip") == 0  # blog's trace is not a vip trace
    assert series(GroupName="Default") == 1

    def summaries(expression: str) -> set[str]:
        found = xray_client.get_trace_summaries(**window(), FilterExpression=expression)
        return {s["Id"] for s in found["TraceSummaries"]}

    assert summaries('group.name = "vip"') == {shop["trace_id"]}
    assert summaries(f'group.arn = "{group["GroupARN"]}"') == {shop["trace_id"]}
    assert summaries('group.name = "Default"') == {shop["trace_id"], blog["trace_id"]}
    assert summaries('group.name = "vip" OR service("blog")') == {
        shop["trace_id"],
        blog["trace_id"],
    }
    with pytest.raises(ClientError) as raised:
        summaries('group.name = "nope"')
    assert "position 13" in raised.value.response["Error"]["Message"]


def test_groups_persist_across_restarts(db: str) -> None:
    config = make_config(db, otlp=None)
    with Collector(config) as first:
        created = xray_client_for(first.endpoint_url).create_group(
            GroupName="errors", FilterExpression="error"
        )["Group"]
    with Collector(config) as second:
        client = xray_client_for(second.endpoint_url)
        assert client.get_group(GroupName="errors")["Group"] == created
        client.delete_group(GroupARN=created["GroupARN"])
    with Collector(config) as third:
        groups = xray_client_for(third.endpoint_url).get_groups()["Groups"]
        assert [g["GroupName"] for g in groups] == ["Default"]
