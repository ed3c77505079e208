#include "imp/troubleshoot/checks.h"

#include <imp/core/cert_tools.h>
#include <imp/serviceability/capacity.h>
#include <imp/sip_proxy/acl.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace imp::troubleshoot {

using sip_proxy::RoutingMode;

std::string_view nameOf(Status s) {
  switch (s) {
    case Status::Pass: return "PASS";
    case Status::Warn: return "WARN";
    case Status::Fail: return "FAIL";
  }
  return "FAIL";
}

const std::vector<std::string>& federationServices() {
  static const std::vector<std::string> s = {"sip-proxy", "federation-cm", "xcp-router", "xcp-connection-manager"};
  return s;
}

namespace {

CheckResult result(std::string_view id, std::string requirement) {
  CheckResult r;
  r.id = std::string(id);
  r.requirement = std::move(requirement);
  return r;
}

CheckResult& fail(CheckResult& r, std::string detail, std::string fix) {
  r.status = Status::Fail;
  r.detail = std::move(detail);
  r.fix = std::move(fix);
  return r;
}

CheckResult& warn(CheckResult& r, std::string detail, std::string fix) {
  r.status = Status::Warn;
  r.detail = std::move(detail);
  r.fix = std::move(fix);
  return r;
}

CheckResult& pass(CheckResult& r, std::string detail) {
  r.status = Status::Pass;
  r.detail = std::move(detail);
  r.fix.clear();
  return r;
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// example.com -> .com.example.* (RT-2)
std::string reversedPattern(const std::string& domain) {
  std::string out;
  std::size_t end = domain.size();
  while (end > 0) {
    auto dot = domain.rfind('.', end - 1);
    const std::size_t start = dot == std::string::npos ? 0 : dot + 1;
    out += "." + domain.substr(start, end - start);
    if (dot == std::string::npos) break;
    end = dot;
  }
  return out + ".*";
}

// 3.2 (milliseconds, one decimal)
std::string millis(double ms) {
  const long tenths = std::lround(ms * 10);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10);
}

}  // namespace

CheckResult checkFederationEnabled(const Facts& f) {
  auto r = result(kFederationEnabled, "FED-1/TS-2");
  if (f.federation.enabled) return pass(r, "partitioned intradomain federation is enabled");
  return fail(r, "partitioned intradomain federation is disabled: no request is routed to the Microsoft server",
              "impctl federation enable");
}

CheckResult checkRoutingMode(const Facts& f) {
  auto r = result(kRoutingMode, "FED-6/TS-2/TS-7");
  if (f.federation.routingMode == RoutingMode::Basic) return pass(r, "basic routing mode");
  if (f.interClusterPeers == 0)
    return pass(r, "advanced routing mode on a single cluster (needs the Microsoft users' SIP URIs in the directory)");
  return fail(r,
              "advanced routing mode with " + std::to_string(f.interClusterPeers) +
                  " inter-cluster peer(s): advanced mode is only valid for a single cluster",
              "impctl federation set --routing-mode basic");
}

CheckResult checkStaticRoutes(const Facts& f) {
  auto r = result(kStaticRoutes, "RT-1/TS-2");
  if (f.domains.empty())
    return warn(r, "no presence domain is configured or in use, so none can be routed to the Microsoft server",
                "add the shared presence domain to the directory, then a static route for it");
  sip_proxy::RouteTable table(f.routes);
  std::vector<std::string> missing;
  for (const auto& d : f.domains)
    if (table.lookup(d).empty()) missing.push_back(d);
  if (missing.empty())
    return pass(r, "every presence domain (" + std::to_string(f.domains.size()) + ") has a static route");
  return fail(r, "no static route for " + join(missing) + " (requests to the Microsoft users time out: 408)",
              "impctl route add " + reversedPattern(missing.front()) +
                  " --route-type domain --next-hop MICROSOFT-SERVER" +
                  (missing.size() > 1 ? " (one per domain)" : ""));
}

CheckResult checkNextHops(const Facts& f) {
  auto r = result(kNextHops, "RT-1/RT-10/TS-2/TS-5");
  if (f.routes.empty()) return warn(r, "no static route, so no next hop to probe", "add the static routes first (static-routes)");
  std::vector<std::string> parts;
  std::string failFix, warnFix;
  for (const auto& h : f.hopProbes) {
    if (h.addresses.empty()) {
      parts.push_back(h.hop + ": " + h.error);
      if (failFix.empty())
        failFix = "add an A record for " + h.host + " to the DNS this node uses (RT-10), or route to the server's IP address";
      continue;
    }
    const std::string where = h.hop + (h.address == h.host ? "" : " (" + h.address + ")");
    if (h.status == 0) {
      parts.push_back(where + ": no answer to OPTIONS: " + h.error);
      if (!failFix.empty()) continue;
      if (h.error.starts_with("TLS handshake"))
        failFix = "make the TLS handshake work (TS-10): the next hop's certificate must chain to cup-trust (impctl cert "
                  "upload-trust CA.pem) and the Microsoft server must trust this node's CA";
      else
        failFix = "check that the Microsoft server listens on " + std::to_string(h.port) + " over " +
                  std::string(sip_proxy::nameOf(h.transport)) +
                  ", trusts this node (host authorization) and that no firewall is in the way; impctl route list";
      continue;
    }
    std::string text = where + " answered " + std::to_string(h.status) + " " + h.reason + " in " + millis(h.rttMs) + " ms";
    if (h.status >= 500 && warnFix.empty())
      warnFix = "the server at " + where + " is up but answers " + std::to_string(h.status) +
                ": check its front-end services and logs";
    parts.push_back(std::move(text));
  }
  const std::string detail = join(parts, "; ");
  if (!failFix.empty()) return fail(r, detail, failFix);
  if (!warnFix.empty()) return warn(r, detail, warnFix);
  return pass(r, detail);
}

CheckResult checkPeerReverseDns(const Facts& f) {
  auto r = result(kPeerReverseDns, "RT-8/TS-6");
  if (f.ptrProbes.empty()) return pass(r, "no peer address to look up (no IP address in the ACL or the static routes)");
  const bool nameEntries = std::any_of(f.acl.begin(), f.acl.end(),
                                       [](const sip_proxy::AclEntry& e) { return e.kind == sip_proxy::AclKind::Name; });
  std::vector<std::string> slow, missing, good;
  for (const auto& p : f.ptrProbes) {
    if (p.timedOut) slow.push_back(p.ip + ": no answer in " + millis(p.ms) + " ms");
    else if (p.ms > kSlowDnsMs) slow.push_back(p.ip + " took " + millis(p.ms) + " ms");
    else if (!p.name) missing.push_back(p.ip);
    else good.push_back(p.ip + " -> " + *p.name + " (" + millis(p.ms) + " ms)");
  }
  if (!slow.empty())
    return fail(r, "slow reverse DNS: " + join(slow) + " (each new source waits for it before FQDN ACL entries match)",
                "fix the DNS this node uses ([dns] servers in impd.conf, or /etc/resolv.conf) and add PTR records for the "
                "Microsoft servers' addresses");
  if (!missing.empty() && nameEntries)
    return warn(r, "no PTR record for " + join(missing) + ": FQDN and domain ACL entries cannot match requests from them",
                "add PTR records for " + join(missing) + " to the DNS, or ACL entries by IP (impctl acl add " +
                    missing.front() + ")");
  for (const auto& ip : missing) good.push_back(ip + ": no PTR record (the ACL matches it by address)");
  return pass(r, join(good, "; "));
}

CheckResult checkNodeNames(const Facts& f) {
  auto r = result(kNodeNames, "RT-10/TS-4");
  if (f.nodes.empty()) return warn(r, "no node of the cluster is registered", "check the node's database (impctl status)");
  std::vector<std::string> bad, good;
  for (const auto& [id, host] : f.nodes) {
    auto it = std::find_if(f.nodeNames.begin(), f.nodeNames.end(), [&](const NameProbe& n) { return n.name == host; });
    const std::string who = id + " (" + host + ")";
    if (it == f.nodeNames.end() || it->addresses.empty())
      bad.push_back(who + (it != f.nodeNames.end() && it->timedOut ? ": no DNS answer" : " does not resolve"));
    else if (it->ms > kSlowDnsMs)
      bad.push_back(who + " took " + millis(it->ms) + " ms to resolve");
    else
      good.push_back(who + " -> " + join(it->addresses, " "));
  }
  if (!bad.empty())
    return fail(r, join(bad, "; "),
                "add an A record for every IMP node's host name to the DNS (RT-10): the Microsoft servers reach the "
                "nodes by name, and so does this check");
  return pass(r, join(good, "; "));
}

CheckResult checkAclCoversNextHops(const Facts& f) {
  auto r = result(kAclCoversNextHops, "RT-7/TS-1/TS-3");
  if (f.routes.empty()) return warn(r, "no static route, so no next hop to check", "add the static routes first (static-routes)");
  sip_proxy::AclMatcher acl(f.acl);
  std::set<std::string> uncovered;
  std::set<std::string> hops;
  for (const auto& rt : f.routes) {
    hops.insert(rt.nextHop);
    const bool ok = sip_proxy::canonicalIp(rt.nextHop) ? acl.allowsAddress(rt.nextHop) : acl.allowsName(rt.nextHop);
    if (!ok) uncovered.insert(rt.nextHop);
  }
  if (uncovered.empty())
    return pass(r, acl.allowsAll() ? "the incoming ACL allows all sources"
                                   : "the incoming ACL covers every next hop (" + std::to_string(hops.size()) + ")");
  std::vector<std::string> list(uncovered.begin(), uncovered.end());
  return fail(r, "the incoming ACL does not cover " + join(list) + " (Lync clients sign out and in again, no availability)",
              "impctl acl add " + list.front() + (list.size() > 1 ? " (one per next hop, IP and FQDN)" : ""));
}

CheckResult checkPeerAuthListener(const Facts& f) {
  auto r = result(kPeerAuthListener, "TLS-5/TS-10");
  auto it = std::find_if(f.listeners.begin(), f.listeners.end(),
                         [](const sip_proxy::Listener& l) { return l.name == "tls-peer-auth"; });
  if (it == f.listeners.end())
    return fail(r, "no peer-auth TLS listener is configured", "impctl listener set tls-peer-auth --port 5061 --enable");
  if (!it->enabled)
    return fail(r, "the peer-auth TLS listener is disabled: mutual TLS from the Microsoft server is refused",
                "impctl listener set tls-peer-auth --port 5061 --enable");
  if (it->port != 5061)
    return warn(r, "the peer-auth TLS listener is on port " + std::to_string(it->port) +
                       "; the Microsoft side's static routes usually point at 5061",
                "impctl listener set tls-server-auth --port 5063, then impctl listener set tls-peer-auth --port 5061");
  return pass(r, "the peer-auth TLS listener is enabled on 5061");
}

CheckResult checkPeerSubjects(const Facts& f) {
  auto r = result(kPeerSubjects, "TLS-2/TLS-3/TS-10");
  if (f.peerSubjects.empty())
    return fail(r, "no TLS peer subject: peer-auth TLS accepts no Microsoft server",
                "impctl tls peer-subject add LYNC-SERVER-FQDN, then impctl tls context set peer-auth --peer-subject "
                "LYNC-SERVER-FQDN");
  auto ctx = std::find_if(f.tlsContexts.begin(), f.tlsContexts.end(),
                          [](const sip_proxy::TlsContext& c) { return c.name == sip_proxy::kPeerAuthContext; });
  if (ctx == f.tlsContexts.end())
    return fail(r, "the peer-auth TLS context is missing", "impctl db migrate (it creates the peer-auth context)");
  std::vector<std::string> unselected;
  for (const auto& p : f.peerSubjects)
    if (std::find(ctx->peerSubjects.begin(), ctx->peerSubjects.end(), p.subjectCn) == ctx->peerSubjects.end())
      unselected.push_back(p.subjectCn);
  std::string fix = "impctl tls context set peer-auth";
  for (const auto& p : f.peerSubjects) fix += " --peer-subject " + p.subjectCn;
  if (unselected.size() == f.peerSubjects.size())
    return fail(r, "the peer-auth TLS context selects no configured peer subject (" + join(unselected) + ")", fix);
  if (!unselected.empty())
    return warn(r, "the peer-auth TLS context does not select " + join(unselected), fix);
  return pass(r, "the peer-auth TLS context selects every peer subject (" + std::to_string(f.peerSubjects.size()) + ")");
}

CheckResult checkMicrosoftCertificate(const Facts& f) {
  auto r = result(kMicrosoftCertificate, "TLS-2/TLS-5/TS-10");
  std::vector<const HopProbe*> tls, seen;
  for (const auto& h : f.hopProbes)
    if (h.transport == sip_proxy::Transport::Tls) (h.peerCn.empty() ? tls : seen).push_back(&h);
  if (seen.empty() && tls.empty()) return pass(r, "no static route uses TLS, so no Microsoft certificate to check");
  if (seen.empty())
    return warn(r, "no TLS handshake with a next hop completed, so its certificate was not seen (next-hops says why)",
                "fix next-hops first");
  auto ctx = std::find_if(f.tlsContexts.begin(), f.tlsContexts.end(),
                          [](const sip_proxy::TlsContext& c) { return c.name == sip_proxy::kPeerAuthContext; });
  std::vector<std::string> problems, good;
  std::string fix;
  for (const auto* h : seen) {
    const std::string who = h->hop + " presents " + h->peerCn;
    std::vector<std::string> missing;
    if (!h->peerServerAuth) missing.push_back("serverAuth (1.3.6.1.5.5.7.3.1)");
    if (!h->peerClientAuth) missing.push_back("clientAuth (1.3.6.1.5.5.7.3.2)");
    if (!missing.empty()) {
      problems.push_back(who + ", whose extended key usage lacks " + join(missing, " and "));
      if (fix.empty())
        fix = "have the Microsoft server's certificate issued with serverAuth and clientAuth extended key usage: "
              "Lync presents it for mutual TLS to the peer-auth listener";
      continue;
    }
    const std::string cn = sip_proxy::lower(h->peerCn);  // subjects are kept in lower case (TLS-2)
    const bool known = std::any_of(f.peerSubjects.begin(), f.peerSubjects.end(),
                                   [&](const sip_proxy::PeerSubject& p) { return p.subjectCn == cn; });
    const bool selected =
        ctx != f.tlsContexts.end() && std::find(ctx->peerSubjects.begin(), ctx->peerSubjects.end(), cn) != ctx->peerSubjects.end();
    if (!known || !selected) {
      problems.push_back(who + (known ? ", not selected by the peer-auth TLS context"
                                      : ", which is not a TLS peer subject: its connections to the peer-auth "
                                        "listener are refused"));
      if (fix.empty())
        fix = (known ? std::string() : "impctl tls peer-subject add " + h->peerCn + ", then ") +
              "impctl tls context set peer-auth --peer-subject " + h->peerCn;
      continue;
    }
    good.push_back(who + " (serverAuth, clientAuth, a selected peer subject)");
  }
  if (!problems.empty()) return fail(r, join(problems, "; "), fix);
  return pass(r, join(good, "; "));
}

namespace {

// "2026-12-07T19:00:00Z", the form of core::CertInfo's dates: equal-length
// UTC strings compare as the times do.
std::string isoUtc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::string> readText(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

CheckResult checkNodeCertificate(const Facts& f) {
  auto r = result(kNodeCertificate, "TLS-4/TLS-5/TS-10");
  const std::string fixFiles = "impctl cert csr --out node.csr, have the CA sign it with serverAuth and clientAuth "
                               "extended key usage, impctl cert upload-trust CA.pem and impctl cert upload node.pem "
                               "(TLS-4; or [tls] cert_file, key_file, ca_file in impd.conf and a restart)";
  if (f.certFile.empty()) return fail(r, "no node certificate", fixFiles);
  const auto pem = readText(f.certFile);
  std::vector<core::CertInfo> chain;
  try {
    if (pem) chain = core::parseCertificates(*pem);
  } catch (const core::CertError&) {
  }
  if (chain.empty()) return fail(r, "cannot read a PEM certificate from " + f.certFile.string(), fixFiles);
  const auto& cert = chain.front();
  const std::time_t now = f.now ? f.now : std::time(nullptr);

  std::vector<std::string> failures, warnings;
  const std::string nowIso = isoUtc(now);
  const bool timely = cert.notBefore <= nowIso && nowIso <= cert.notAfter;
  if (cert.notAfter < nowIso) failures.push_back("it has expired");
  else if (cert.notBefore > nowIso) failures.push_back("it is not valid yet");
  else if (cert.notAfter < isoUtc(now + static_cast<std::time_t>(kExpiryWarningDays) * 86400))
    warnings.push_back("it expires within " + std::to_string(kExpiryWarningDays) + " days");
  std::vector<std::string> missingEku;
  if (!cert.serverAuth) missingEku.push_back("serverAuth (1.3.6.1.5.5.7.3.1)");
  if (!cert.clientAuth) missingEku.push_back("clientAuth (1.3.6.1.5.5.7.3.2)");
  if (!missingEku.empty()) failures.push_back("its extended key usage lacks " + join(missingEku, " and "));

  // The trust store: [tls] ca_file and cup-trust; every entry must read.
  std::vector<std::string> roots = f.trustPems;
  bool readable = true;
  if (!f.caFile.empty()) {
    auto ca = readText(f.caFile);
    readable = ca.has_value();
    if (ca) roots.push_back(*ca);
  }
  for (const auto& root : roots) {
    try {
      core::parseCertificates(root);
    } catch (const core::CertError&) {
      readable = false;
    }
  }
  if (roots.empty() && f.caFile.empty()) {
    warnings.push_back("no trust store is configured (impctl cert upload-trust, or [tls] ca_file), so the chain is not "
                       "checked");
  } else if (!readable) {
    failures.push_back("the trust store (" + (f.caFile.empty() ? std::string("cup-trust") : f.caFile.string()) +
                       ") cannot be read");
  } else if (timely) {
    // Checked now, so an expired intermediate or root shows too; a leaf
    // out of its dates is reported above, and its chain matters no more.
    auto check = core::verifyCertificateChain(*pem, roots, now);
    if (!check.ok) failures.push_back("it does not chain to the trust store (" + check.reason + ")");
  }

  std::string what = f.certFile.string();
  if (!failures.empty()) return fail(r, "node certificate " + what + ": " + join(failures, "; "), fixFiles);
  if (!warnings.empty()) return warn(r, "node certificate " + what + ": " + join(warnings, "; "), fixFiles);
  return pass(r, "node certificate " + what + " is valid, has serverAuth and clientAuth, and chains to the trust store");
}

CheckResult checkFederationServices(const Facts& f) {
  auto r = result(kFederationServices, "SV-6/TS-2");
  std::vector<std::string> stopped;
  for (const auto& name : federationServices()) {
    auto it = std::find_if(f.services.begin(), f.services.end(), [&](const ServiceFact& s) { return s.name == name; });
    if (it == f.services.end() || !it->running) stopped.push_back(name);
  }
  if (stopped.empty()) return pass(r, "running: " + join(federationServices()));
  std::string fix;
  for (const auto& s : stopped) fix += (fix.empty() ? "" : "; ") + std::string("impctl service start ") + s;
  return fail(r, "not running on this node: " + join(stopped), fix);
}

CheckResult checkSingleSystemUsers(const Facts& f) {
  auto r = result(kSingleSystemUsers, "FED-1");
  if (f.dualEnabledUsers == 0) return pass(r, "no user licensed on IMP carries a Microsoft SIP URI in the directory");
  std::string who = join(f.dualEnabledSample);
  if (f.dualEnabledUsers > f.dualEnabledSample.size())
    who += " and " + std::to_string(f.dualEnabledUsers - f.dualEnabledSample.size()) + " more";
  return fail(r,
              std::to_string(f.dualEnabledUsers) +
                  " user(s) licensed on IMP also carry a Microsoft SIP URI, so both systems claim them and routing "
                  "breaks: " + who,
              "enable each user on one system only: disable migrated users on the Microsoft server (Disable-CsUser) "
              "and remove their Microsoft SIP URI from the directory; users who stay on Microsoft are not licensed on "
              "IMP");
}

CheckResult checkContactLimits(const Facts& f) {
  auto r = result(kContactLimits, "HA-2/PS-1");
  const std::uint64_t perUser = f.maxContacts == 0 ? kAssumedAverageContacts : f.maxContacts;
  const std::uint64_t capacity = serviceability::kImpMeasuredContacts;
  const std::uint64_t contacts = f.homedUsers * perUser;
  const std::uint64_t maxUsers = serviceability::maxUsers(capacity, capacity, perUser, false);
  const std::string limit =
      f.maxContacts == 0 ? "no contact limit (planned with the HA-2 average of 200)" : "a limit of " + std::to_string(perUser);
  std::string detail = std::to_string(f.homedUsers) + " users homed here x " + limit + " = " + std::to_string(contacts) +
                       " contacts; the node holds " + std::to_string(capacity) + " (" + std::to_string(maxUsers) +
                       " users)";
  const std::string fix = "move users to another node, or lower the limit: impctl presence settings set --max-contacts N";
  if (contacts > capacity) return fail(r, detail + ": over capacity", fix);
  if (contacts * 100 > capacity * kCapacityWarnPercent)
    return warn(r, detail + ": over " + std::to_string(kCapacityWarnPercent) + "% of capacity", fix);
  return pass(r, detail);
}

std::vector<CheckResult> runChecks(const Facts& f) {
  using Fn = CheckResult (*)(const Facts&);
  const std::vector<std::pair<std::string_view, Fn>> all = {
      {kFederationEnabled, checkFederationEnabled}, {kRoutingMode, checkRoutingMode},
      {kStaticRoutes, checkStaticRoutes},           {kNextHops, checkNextHops},
      {kAclCoversNextHops, checkAclCoversNextHops}, {kPeerReverseDns, checkPeerReverseDns},
      {kNodeNames, checkNodeNames},
      {kPeerAuthListener, checkPeerAuthListener},   {kPeerSubjects, checkPeerSubjects},
      {kMicrosoftCertificate, checkMicrosoftCertificate},
      {kNodeCertificate, checkNodeCertificate},     {kFederationServices, checkFederationServices},
      {kSingleSystemUsers, checkSingleSystemUsers}, {kContactLimits, checkContactLimits},
  };
  std::vector<CheckResult> out;
  for (const auto& [id, fn] : all) {
    if (auto it = f.unavailable.find(std::string(id)); it != f.unavailable.end()) {
      auto r = fn(Facts{});  // for the requirement ID only
      fail(r, "could not be checked: " + it->second, "check the node's database and logs (impctl status)");
      out.push_back(std::move(r));
      continue;
    }
    try {
      out.push_back(fn(f));
    } catch (const std::exception& e) {
      auto r = fn(Facts{});  // for the requirement ID only
      fail(r, std::string("could not be checked: ") + e.what(), "check the node's logs (impctl log list)");
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::string summary(const std::vector<CheckResult>& results) {
  std::size_t p = 0, w = 0, x = 0;
  for (const auto& r : results) (r.status == Status::Pass ? p : r.status == Status::Warn ? w : x)++;
  return std::to_string(results.size()) + " checks: " + std::to_string(p) + " pass, " + std::to_string(w) + " warn, " +
         std::to_string(x) + " fail";
}

}  // namespace imp::troubleshoot
