#!/usr/bin/env python3
"""Regenerate datasets/networks/*.txt from the operators' published IP lists.

Standard library only. Run on a machine with internet access:

    python3 datasets/scripts/fetch-networks.py              # every list
    python3 datasets/scripts/fetch-networks.py aws bingbot  # some lists
    python3 datasets/scripts/fetch-networks.py --list       # names and sources

Each output file starts with '#' comment lines naming the source URL, the
date the data carries (its creationTime / createDate / ...), and the day it
was fetched, followed by one CIDR per line: IPv4 first, then IPv6, each in
address order, duplicates removed. Prefixes are written as published (host
bits cleared); they are not merged.

A source that answers with fewer prefixes than its `minimum` is treated as
broken and its file is left untouched, so a truncated download cannot
silently shrink a list. The script exits non-zero if any list failed.
"""

import argparse
import csv
import datetime
import io
import ipaddress
import json
import os
import re
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "networks"))
USER_AGENT = "palisade-fetch-networks/1 (+https://github.com/; dataset refresh)"

GOOGLE_DOCS = "https://developers.google.com/search/docs/crawling-indexing/verifying-googlebot"

# name -> how to fetch it. `kind` selects the parser below.
SOURCES = {
    # --- crawler operators ------------------------------------------------
    "google-crawlers": dict(
        title="Google common crawlers (Googlebot, Storebot-Google, Google-InspectionTool, GoogleOther, Google-CloudVertexBot)",
        urls=["https://developers.google.com/static/crawling/ipranges/common-crawlers.json"],
        docs=GOOGLE_DOCS,
        kind="prefixes",
        minimum=20,
    ),
    "google-special-crawlers": dict(
        title="Google special-case crawlers (AdsBot-Google, Mediapartners-Google, APIs-Google, Google-Safety)",
        urls=["https://developers.google.com/static/crawling/ipranges/special-crawlers.json"],
        docs=GOOGLE_DOCS,
        kind="prefixes",
        minimum=20,
    ),
    "google-user-triggered": dict(
        title="Google user-triggered fetchers (user-triggered-fetchers.json only; Google also publishes "
        "user-triggered-fetchers-google.json and user-triggered-agents.json)",
        urls=["https://developers.google.com/static/crawling/ipranges/user-triggered-fetchers.json"],
        docs=GOOGLE_DOCS,
        kind="prefixes",
        minimum=20,
    ),
    "bingbot": dict(
        title="Microsoft Bing: bingbot",
        urls=["https://www.bing.com/toolbox/bingbot.json"],
        docs="https://www.bing.com/webmasters/help/how-to-verify-bingbot-3905dc26",
        kind="prefixes",
        minimum=5,
    ),
    "applebot": dict(
        title="Apple: Applebot",
        urls=["https://search.developer.apple.com/applebot.json"],
        docs="https://support.apple.com/en-us/119829",
        kind="prefixes",
        minimum=5,
    ),
    "openai-gptbot": dict(
        title="OpenAI: GPTBot",
        urls=["https://openai.com/gptbot.json"],
        docs="https://platform.openai.com/docs/bots",
        kind="prefixes",
        minimum=5,
    ),
    "openai-searchbot": dict(
        title="OpenAI: OAI-SearchBot",
        urls=["https://openai.com/searchbot.json"],
        docs="https://platform.openai.com/docs/bots",
        kind="prefixes",
        minimum=5,
    ),
    "openai-chatgpt-user": dict(
        title="OpenAI: ChatGPT-User",
        urls=["https://openai.com/chatgpt-user.json"],
        docs="https://platform.openai.com/docs/bots",
        kind="prefixes",
        minimum=5,
    ),
    "duckduckbot": dict(
        title="DuckDuckGo: DuckDuckBot",
        urls=["https://duckduckgo.com/duckduckbot.json"],
        docs="https://duckduckgo.com/duckduckgo-help-pages/results/duckduckbot",
        kind="prefixes",
        minimum=20,
    ),
    "commoncrawl": dict(
        title="Common Crawl: CCBot",
        urls=["https://index.commoncrawl.org/ccbot.json"],
        docs="https://commoncrawl.org/ccbot",
        kind="prefixes",
        minimum=1,
    ),
    "perplexitybot": dict(
        title="Perplexity: PerplexityBot",
        urls=["https://www.perplexity.com/perplexitybot.json"],
        docs="https://docs.perplexity.ai/guides/bots",
        kind="prefixes",
        minimum=1,
    ),
    "perplexity-user": dict(
        title="Perplexity: Perplexity-User",
        urls=["https://www.perplexity.com/perplexity-user.json"],
        docs="https://docs.perplexity.ai/guides/bots",
        kind="prefixes",
        minimum=1,
    ),
    "ahrefs": dict(
        title="Ahrefs crawlers (AhrefsBot, AhrefsSiteAudit)",
        urls=["https://api.ahrefs.com/v3/public/crawler-ip-ranges"],
        docs="https://ahrefs.com/robot",
        kind="prefixes",
        minimum=10,
    ),
    # --- monitoring services --------------------------------------------
    "uptimerobot": dict(
        title="UptimeRobot monitoring probes",
        urls=["https://api.uptimerobot.com/meta/ips"],
        docs="https://uptimerobot.com/",
        kind="scan",
        minimum=20,
    ),
    "pingdom": dict(
        title="Pingdom monitoring probes",
        urls=["https://my.pingdom.com/probes/ipv4", "https://my.pingdom.com/probes/ipv6"],
        docs="https://www.pingdom.com/",
        kind="scan",
        minimum=20,
    ),
    # --- cloud and hosting providers --------------------------------------
    "aws": dict(
        title="Amazon Web Services (every service and region)",
        urls=["https://ip-ranges.amazonaws.com/ip-ranges.json"],
        docs="https://docs.aws.amazon.com/vpc/latest/userguide/aws-ip-ranges.html",
        kind="aws",
        minimum=1000,
    ),
    "gcp": dict(
        title="Google Cloud (customer-usable external ranges)",
        urls=["https://www.gstatic.com/ipranges/cloud.json"],
        docs="https://cloud.google.com/compute/docs/faq#find_ip_range",
        kind="prefixes",
        minimum=100,
    ),
    "azure": dict(
        title="Microsoft Azure (Service Tags, public cloud, every tag)",
        urls=["https://www.microsoft.com/en-us/download/details.aspx?id=56519"],
        docs="https://learn.microsoft.com/azure/virtual-network/service-tags-overview",
        kind="azure",
        minimum=1000,
    ),
    "oracle": dict(
        title="Oracle Cloud Infrastructure",
        urls=["https://docs.oracle.com/iaas/tools/public_ip_ranges.json"],
        docs="https://docs.oracle.com/en-us/iaas/Content/General/Concepts/addressranges.htm",
        kind="oracle",
        minimum=100,
    ),
    "digitalocean": dict(
        title="DigitalOcean (geofeed)",
        urls=["https://digitalocean.com/geo/google.csv"],
        docs="https://docs.digitalocean.com/platform/",
        kind="geofeed",
        minimum=100,
    ),
    # Hetzner and OVHcloud publish no list of their ranges. These are the
    # prefixes their own ASNs announce in BGP (RIPEstat), which also covers
    # space they route for customers and may miss space routed by partners.
    "hetzner": dict(
        title="Hetzner (derived: BGP announcements of AS24940, AS213230, AS212317; no official list)",
        urls=["https://stat.ripe.net/data/announced-prefixes/data.json?resource=AS%s" % asn for asn in (24940, 213230, 212317)],
        docs="https://stat.ripe.net/docs/data_api#announced-prefixes",
        kind="ripestat",
        minimum=20,
    ),
    "ovh": dict(
        title="OVHcloud (derived: BGP announcements of AS16276; no official list)",
        urls=["https://stat.ripe.net/data/announced-prefixes/data.json?resource=AS16276"],
        docs="https://stat.ripe.net/docs/data_api#announced-prefixes",
        kind="ripestat",
        minimum=100,
    ),
    "cloudflare": dict(
        title="Cloudflare (edge network)",
        urls=["https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"],
        docs="https://www.cloudflare.com/ips/",
        kind="text",
        minimum=10,
    ),
}


def fetch(url):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode("utf-8-sig")


# --- parsers: text of each URL -> (prefix strings, "data as of" string) ---


def parse_prefixes(texts):
    """Google-style documents: {"creationTime": ..., "prefixes": [{"ipv4Prefix"|"ipv6Prefix": ...}]}.

    Used by Google (crawlers and cloud.json), Bing, Apple, OpenAI, DuckDuckGo,
    Common Crawl and Perplexity.
    """
    prefixes, dates = [], []
    for text in texts:
        doc = json.loads(text)
        dates.append(str(doc.get("creationTime", "not stated")))
        for entry in doc.get("prefixes", []):
            for key in ("ipv4Prefix", "ipv6Prefix"):
                if entry.get(key):
                    prefixes.append(entry[key])
    return prefixes, "creationTime " + ", ".join(dates)


def parse_aws(texts):
    doc = json.loads(texts[0])
    prefixes = [p["ip_prefix"] for p in doc.get("prefixes", [])]
    prefixes += [p["ipv6_prefix"] for p in doc.get("ipv6_prefixes", [])]
    return prefixes, "createDate %s, syncToken %s" % (doc.get("createDate"), doc.get("syncToken"))


def parse_oracle(texts):
    doc = json.loads(texts[0])
    prefixes = [c["cidr"] for region in doc.get("regions", []) for c in region.get("cidrs", [])]
    return prefixes, "last_updated_timestamp %s" % doc.get("last_updated_timestamp")


def parse_geofeed(texts):
    """RFC 8805 geofeed CSV: the first column is the prefix."""
    prefixes = []
    for row in csv.reader(io.StringIO(texts[0])):
        if row and row[0].strip() and not row[0].lstrip().startswith("#"):
            prefixes.append(row[0].strip())
    return prefixes, "not stated by the source"


def parse_text(texts):
    prefixes = []
    for text in texts:
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                prefixes.append(line)
    return prefixes, "not stated by the source"


def parse_azure(texts):
    """The download page links a dated ServiceTags_Public_YYYYMMDD.json."""
    match = re.search(r'https://download\.microsoft\.com/download/[^"\'\s]+ServiceTags_Public_(\d+)\.json', texts[0])
    if not match:
        raise ValueError("no ServiceTags_Public_*.json link on the download page")
    doc = json.loads(fetch(match.group(0)))
    prefixes = [
        p for value in doc.get("values", []) for p in value.get("properties", {}).get("addressPrefixes", [])
    ]
    return prefixes, "ServiceTags_Public_%s.json, changeNumber %s" % (match.group(1), doc.get("changeNumber"))


def parse_scan(texts):
    """Any document that lists addresses: every token that parses as an IP
    address or network is taken (used where the format is a plain list or
    is not otherwise documented)."""
    prefixes = []
    for text in texts:
        for token in re.findall(r"[0-9A-Fa-f:.]+(?:/[0-9]{1,3})?", text):
            if "." not in token and ":" not in token:
                continue
            try:
                ipaddress.ip_network(token, strict=False)
            except ValueError:
                continue
            prefixes.append(token)
    return prefixes, "not stated by the source"


def parse_ripestat(texts):
    """RIPEstat announced-prefixes: {"data": {"prefixes": [{"prefix": ...}], "query_endtime": ...}}."""
    prefixes, dates = [], []
    for text in texts:
        data = json.loads(text).get("data", {})
        dates.append(str(data.get("query_endtime", "not stated")))
        prefixes += [p["prefix"] for p in data.get("prefixes", [])]
    return prefixes, "BGP view at " + ", ".join(sorted(set(dates)))


PARSERS = {
    "prefixes": parse_prefixes,
    "aws": parse_aws,
    "oracle": parse_oracle,
    "geofeed": parse_geofeed,
    "text": parse_text,
    "azure": parse_azure,
    "ripestat": parse_ripestat,
    "scan": parse_scan,
}


def normalise(prefixes):
    """Parse, clear host bits, drop duplicates; IPv4 first, then IPv6, in address order."""
    networks = set()
    for p in prefixes:
        networks.add(ipaddress.ip_network(p.strip(), strict=False))
    return sorted(networks, key=lambda n: (n.version, int(n.network_address), n.prefixlen))


def render(name, title, urls, docs, as_of, copy, cidrs, notes=()):
    """The text of one network file."""
    v4 = sum(1 for n in cidrs if n.version == 4)
    lines = [
        "# %s: %s" % (name, title),
        "# Source: %s" % " + ".join(urls),
        "# Documentation: %s" % docs,
        "# Data as of: %s" % as_of,
        "# Copy read: %s" % copy,
    ]
    lines += ["# %s" % n for n in notes]
    lines += [
        "# Regenerate: python3 datasets/scripts/fetch-networks.py %s" % name,
        "# %d prefixes (%d IPv4, %d IPv6), one per line, IPv4 then IPv6 in address order." % (len(cidrs), v4, len(cidrs) - v4),
    ]
    lines += [str(n) for n in cidrs]
    return "\n".join(lines) + "\n"


def refresh(name, out_dir):
    source = SOURCES[name]
    texts = [fetch(url) for url in source["urls"]]
    prefixes, as_of = PARSERS[source["kind"]](texts)
    cidrs = normalise(prefixes)
    if len(cidrs) < source["minimum"]:
        raise ValueError("only %d prefixes (expected at least %d)" % (len(cidrs), source["minimum"]))
    today = datetime.date.today().isoformat()
    text = render(
        name,
        source["title"],
        source["urls"],
        source["docs"],
        as_of + " (from the source document)",
        "fetched from the source URL on %s by fetch-networks.py" % today,
        cidrs,
    )
    path = os.path.join(out_dir, name + ".txt")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return len(cidrs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="lists to refresh (default: all)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="print the known lists and exit")
    args = parser.parse_args()
    if args.list:
        for name, source in SOURCES.items():
            print("%-24s %s" % (name, " + ".join(source["urls"])))
        return 0
    names = args.names or list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        parser.error("unknown list(s): %s (known: %s)" % (", ".join(unknown), ", ".join(SOURCES)))
    failed = 0
    for name in names:
        try:
            count = refresh(name, args.out)
            print("%-24s %6d prefixes" % (name, count))
        except Exception as e:  # keep going: one dead URL must not stop the rest
            failed += 1
            print("%-24s FAILED: %s" % (name, e), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
