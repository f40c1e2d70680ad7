#!/usr/bin/env python3
"""Writes the benchmark policy as JSON: 1,000 routes, 100 rules, 10 IP lists
totalling 200,000 CIDRs (v4 and v6), three token keys.

Usage: gen_policy.py [OUT]   (stdout without OUT)

The same algorithm and PRNG (SplitMix64) as benches/support/policy.rs, so
the Envoy benchmark (scripts/bench-envoy.sh) and the engine benchmark
(`cargo bench --bench engine`) measure the same policy; the landmarks
(routes bench-block / bench-allow / bench-token, list03 holding
203.0.113.0/24) are documented there. Change both or neither.
"""
import json
import sys

M64 = (1 << 64) - 1
SEED = 0x7061_6C69_7361_6465  # "palisade"
ROUTES, RULES, LISTS, CIDRS_PER_LIST = 1000, 100, 10, 20_000
BLOCK_ROUTE, ALLOW_ROUTE, TOKEN_ROUTE, TOKEN_DIFFICULTY = 980, 990, 995, 3


class Rng:
    """SplitMix64, bit for bit as in policy.rs."""

    def __init__(self, seed):
        self.state = seed & M64

    def next_u64(self):
        self.state = (self.state + 0x9E37_79B9_7F4A_7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return self.next_u64() % n

    def pick(self, items):
        return items[self.below(len(items))]


V4_LENS = [16, 20, 22, 24, 24, 24, 28, 32, 32, 32]
V6_LENS = [32, 40, 48, 48, 56, 64, 64, 64]
V4_EXCLUDED = {10, 127, 192, 198, 203}


def random_prefix_text(rng):
    if rng.below(4) == 0:
        g0 = 0x2000 + rng.below(0x1000)
        g1, g2, g3 = rng.below(0x10000), rng.below(0x10000), rng.below(0x10000)
        length = rng.pick(V6_LENS)
        hi = (g0 << 48) | (g1 << 32) | (g2 << 16) | g3
        hi &= (M64 << (64 - length)) & M64
        groups = [(hi >> s) & 0xFFFF for s in (48, 32, 16, 0)]
        return "%x:%x:%x:%x::/%d" % (*groups, length)
    while True:
        first = 1 + rng.below(223)
        if first not in V4_EXCLUDED:
            break
    addr = (first << 24) | rng.below(1 << 24)
    length = rng.pick(V4_LENS)
    addr &= (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
    return "%d.%d.%d.%d/%d" % (addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255, length)


def list_name(i):
    return "list%02d" % i


UA_WORDS = ["sqlmap", "nikto", "masscan", "zgrab", "nuclei", "httpx", "dirbuster", "gobuster", "wpscan", "acunetix"]


def ua_regex(j, rng):
    a = rng.pick(UA_WORDS)
    b = rng.pick(UA_WORDS)
    return r"^(?:%s|%s)[/ -]v?[0-9]+(?:\.[0-9]+)*(?:-r%d)?" % (a, b, j)


def make_lists(rng):
    lists = {}
    for i in range(LISTS):
        cidrs = [random_prefix_text(rng) for _ in range(CIDRS_PER_LIST)]
        if i == 3:
            cidrs[0] = "203.0.113.0/24"
        if i == 7:
            cidrs[0] = "2001:db8:bad::/48"
        lists[list_name(i)] = {"cidrs": cidrs}
    return lists


ACTIONS = [None, None, "allow", "allow", "monitor", "challenge", "challenge_all", "block"]
SCOPES = ["client", "client_route", "global"]


def route(i, rng):
    m = {}
    if i % 10 == 3:
        m["path_regex"] = ["^/api/v[0-9]+/svc%d/[a-z]+/[0-9]+$" % i]
    else:
        m["path"] = ["/svc%d/*" % i]
    if i % 10 == 5:
        m["host"] = ["svc%d.example.com" % i, "*.svc%d.example.net" % i]
    elif i % 10 == 7:
        m["methods"] = ["GET", "HEAD"] if rng.below(2) == 0 else ["POST", "PUT"]
    elif i % 10 == 9:
        m["headers"] = [{"name": "x-tenant", "equals": "t%d" % i}]
        m["except"] = ["/svc%d/public/*" % i]
    r = {"name": "r%04d" % i, "match": m}
    action = rng.pick(ACTIONS)
    if action is not None:
        r["action"] = action
    if action in ("challenge", "challenge_all") and rng.below(2) == 0:
        r["challenge"] = {"difficulty": 1 + rng.below(5)}
    if rng.below(5) == 0:
        rate = "%d/minute" % (100 + rng.below(900))
        burst = rng.below(50)
        scope = rng.pick(SCOPES)
        r["rate_limit"] = {"rate": rate, "burst": burst, "scope": scope}
    if i == BLOCK_ROUTE:
        return {"name": "bench-block", "match": {"path": ["/svc%d/*" % i]}, "action": "block"}
    if i == ALLOW_ROUTE:
        return {"name": "bench-allow", "match": {"path": ["/svc%d/*" % i]}, "action": "allow"}
    if i == TOKEN_ROUTE:
        return {
            "name": "bench-token",
            "match": {"path": ["/svc%d/*" % i]},
            "action": "challenge_all",
            "challenge": {"difficulty": TOKEN_DIFFICULTY},
        }
    return r


CLASS_SETS = [["tool"], ["automation"], ["ai_crawler"], ["seo"], ["tool", "automation"], ["unknown"]]


def rule(j, rng):
    weight = 5 + rng.below(40)
    action = None
    rate_limit = None
    kind = j % 10
    if kind == 0:
        when = {"user_agent": ua_regex(j, rng)}
    elif kind == 1:
        classes = rng.pick(CLASS_SETS)
        if rng.below(3) == 0:
            rate_limit = {"rate": "60/minute", "burst": 10}
        when = {"client_class": classes}
    elif kind == 2:
        k = rng.below(3)
        if k == 0:
            when = {"headers": [{"name": "x-debug-%d" % j, "present": True}]}
        elif k == 1:
            when = {"headers": [{"name": "accept", "regex": "^application/x-evil-%d" % j}]}
        else:
            when = {"headers": [{"name": "accept-language", "absent": True}]}
    elif kind == 3:
        first = j // 10
        names = [list_name(first)]
        if rng.below(2) == 0:
            names.append(list_name((first + 1 + rng.below(9)) % LISTS))
        action = rng.pick([None, None, "challenge", "block"])
        when = {"ip_in": names}
    elif kind == 4:
        ua = ua_regex(j, rng)
        lst = list_name(rng.below(LISTS))
        when = {"any": [
            {"user_agent": ua},
            {"ip_in": [lst]},
            {"headers": [{"name": "x-probe-%d" % j, "present": True}]},
        ]}
    elif kind == 5:
        lst = list_name(rng.below(LISTS))
        when = {"all": [{"client_class": ["tool", "automation"]}, {"not": {"ip_in": [lst]}}]}
    elif kind == 6:
        when = {
            "not": {"any": [
                {"client_class": ["browser", "search_engine"]},
                {"headers": [{"name": "accept-language", "present": True}]},
            ]},
            "methods": ["GET", "POST"],
        }
    elif kind == 7:
        if rng.below(2) == 0:
            when = {"path_regex": [r"^/(?:wp-admin|phpmyadmin|\.git|\.env|cgi-bin)/r%d" % j]}
        else:
            when = {"path": ["/svc%d/debug/*" % rng.below(ROUTES)], "methods": ["POST"]}
    elif kind == 8:
        when = {"query": [{"name": "debug%d" % j, "present": True}]}
    else:
        if rng.below(2) == 0:
            action = "block"
            when = {"crawler": ["spoofed"]}
        else:
            weight = -weight
            when = {"all": [{"client_class": ["search_engine"]}, {"crawler": ["verified"]}]}
    r = {"name": "rule%03d" % j, "when": when, "weight": weight}
    if action is not None:
        r["action"] = action
    if rate_limit is not None:
        r["rate_limit"] = rate_limit
    return r


KEYS = [
    "1:bench-only-key-one-0123456789abcdef",
    "2:bench-only-key-two-0123456789abcdef",
    "3:bench-only-key-three-0123456789abcdef",
]


def policy():
    lists = make_lists(Rng(SEED ^ 1))
    rng = Rng(SEED ^ 2)
    routes = [route(i, rng) for i in range(ROUTES)]
    rng = Rng(SEED ^ 3)
    rules = [rule(j, rng) for j in range(RULES)]
    return {
        "client": {"source": "connection"},
        "tokens": {
            "keys": KEYS,
            "ttl": "1h",
            "max_age": "1h",
            "bind_ip": True,
            "bind_user_agent": True,
            "header": "X-Palisade-Token",
        },
        "rate_limiting": {"buckets": 16384},
        "lists": lists,
        "routes": routes,
        "default_route": {"rate_limit": {"rate": "600/minute", "burst": 60}},
        "rules": rules,
    }


if __name__ == "__main__":
    text = json.dumps(policy(), sort_keys=True, separators=(",", ":"))
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
