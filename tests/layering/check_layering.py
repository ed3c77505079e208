#!/usr/bin/env python3
"""Checks the one-way layering of IMP's libraries (issue 15).

Reads the table CMake writes at generate time (library, tab, its
LINK_LIBRARIES), prints every IMP library with its direct and transitive IMP
dependencies, and exits 1 when a library links an IMP library the table
below does not allow, directly or through another one, or when a library is
not in the table (a new module states its place in the layering first).

The protocol stacks share only the runtime: an XMPP stack (modules/xmpp)
links net and core only (the XMPP services above it add directory), never sip.
"""
import sys

# library -> the IMP libraries it may depend on (directly or transitively).
ALLOWED = {
    "imp_net": set(),
    "imp_core": {"imp_net"},
    "imp_sip": {"imp_net", "imp_core"},
    "imp_directory": {"imp_net", "imp_core"},
    "imp_xmpp": {"imp_net", "imp_core"},
    "imp_serviceability": {"imp_net", "imp_core"},
    "imp_sip_proxy": {"imp_net", "imp_core", "imp_sip", "imp_directory"},
    "imp_xcp_router": {"imp_net", "imp_core", "imp_directory", "imp_xmpp"},
    "imp_federation_cm": {"imp_net", "imp_core", "imp_sip", "imp_xmpp", "imp_directory", "imp_xcp_router"},
    # Bulk provisioning (issue 18): rosters through the XMPP side's stores
    # (Microsoft contacts' subscriptions start with a probe through its
    # router), the routing decision over the SIP proxy's federation settings
    # and static routes.
    "imp_bulk_provisioning": {"imp_net", "imp_core", "imp_sip", "imp_xmpp", "imp_directory", "imp_xcp_router",
                              "imp_sip_proxy"},
    # The troubleshooter (SV-6, TS-1..TS-11): reads the SIP proxy's settings,
    # the directory's domains and the capacity rule (HA-2); nothing depends
    # on it but the applications.
    "imp_troubleshooter": {"imp_net", "imp_core", "imp_sip", "imp_directory", "imp_sip_proxy", "imp_serviceability"},
}


def imp_name(item):
    """imp::sip_proxy / imp_sip_proxy / $<LINK_ONLY:imp_sip> -> imp_sip_proxy; else None."""
    item = item.strip()
    if item.startswith("$<LINK_ONLY:") and item.endswith(">"):
        item = item[len("$<LINK_ONLY:"):-1]
    if item.startswith("imp::"):
        item = "imp_" + item[len("imp::"):].replace("-", "_")
    return item if item.startswith("imp_") else None


def main(path):
    direct = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            lib, _, links = line.partition("\t")
            deps = {d for d in (imp_name(x) for x in links.split(";")) if d and d != lib}
            direct[lib] = deps
    # Only IMP's own libraries count (imp_mysqlcppconn is an imported wrapper).
    for lib in direct:
        direct[lib] &= set(direct)
    if not direct:
        print(f"layering: {path} lists no library", file=sys.stderr)
        return 1

    def closure(lib, seen=None):
        seen = set() if seen is None else seen
        for d in direct.get(lib, ()):
            if d not in seen:
                seen.add(d)
                closure(d, seen)
        return seen

    errors = []
    for lib in sorted(direct):
        allowed = ALLOWED.get(lib)
        all_deps = closure(lib)
        print(f"{lib}: direct [{', '.join(sorted(direct[lib]))}] all [{', '.join(sorted(all_deps))}]")
        if allowed is None:
            errors.append(f"{lib} is not in the layering table of {__file__}")
            continue
        for d in sorted(all_deps - allowed):
            via = "directly" if d in direct[lib] else "through " + ", ".join(
                sorted(x for x in direct[lib] if d in closure(x) or x == d))
            errors.append(f"{lib} must not depend on {d} ({via})")
    for e in errors:
        print("layering violation: " + e, file=sys.stderr)
    print(f"layering: {len(direct)} libraries, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
