"""One table of requests (demo_cases.py) through real Envoy with the filter
and real nginx with the companion's check, both in front of the demo
upstream with the demo policy: the same action, status and annotations for
each, and the same action as `palisade explain`. The table must touch every
route and rule of the demo policy, so a behaviour added to the demo cannot
be tested on one side only."""
import pytest

from conftest import next_client_ip, policy_json, start_companion, start_envoy, start_nginx
from demo_cases import CASES, action_of, explain, outcome, send


@pytest.fixture(scope="module")
def fronts(echo_upstream):
    with start_companion(policy_json()) as companion, \
            start_envoy(policy_json(), echo_upstream, companion=companion) as envoy, \
            start_nginx(companion, echo_upstream) as nginx:
        yield envoy, nginx, companion


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_envoy_and_nginx_decide_alike(fronts, case):
    from demo_cases import client_address

    envoy, nginx, companion = fronts
    address = client_address(case, next_client_ip)
    through_envoy = outcome(send(envoy.url, case, address))
    through_nginx = outcome(send(nginx.url, case, address))
    assert through_nginx == through_envoy
    if case.repeat == 1:
        explained = explain(companion.policy_path, case, address)
        assert action_of(through_envoy) == explained["action"], explained


def test_the_table_covers_every_route_and_rule(fronts):
    from demo_cases import client_address

    _, _, companion = fronts
    policy = policy_json()
    routes, rules = set(), set()
    for case in CASES:
        explained = explain(companion.policy_path, case, client_address(case, next_client_ip))
        routes.add(explained["route"])
        rules.update(r["name"] for r in explained["rules"])
    assert {r["name"] for r in policy["routes"]} - routes == set(), "routes no case reaches"
    assert {r["name"] for r in policy["rules"]} - rules == set(), "rules no case fires"
