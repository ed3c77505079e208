#include "imp/troubleshoot/gather.h"

#include <imp/core/cert_store.h>
#include <imp/core/certificates.h>
#include <imp/core/database.h>
#include <imp/core/service_host.h>
#include <imp/directory/directory.h>
#include <imp/net/tls.h>
#include <imp/sip_proxy/acl.h>
#include <imp/sip_proxy/config_store.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <future>
#include <initializer_list>
#include <set>
#include <system_error>

namespace imp::troubleshoot {

namespace {

// Runs `read`; on an error marks every check in `ids` unavailable.
void guarded(Facts& f, std::initializer_list<std::string_view> ids, const std::function<void()>& read) {
  try {
    read();
  } catch (const std::exception& e) {
    for (auto id : ids) f.unavailable.emplace(std::string(id), e.what());
  }
}

// The SIP proxy's outgoing TLS as it would be built now (proxy_service.cpp):
// the node certificate, the trust bundle the proxy writes (or [tls]
// ca_file), peer verification when there is a trust store, and the
// default-server context's ciphers and versions.
std::shared_ptr<const net::TlsContext> clientTls(const core::NodeCertificate& cert,
                                                  const std::vector<sip_proxy::TlsContext>& contexts, std::string* why) {
  auto def = std::find_if(contexts.begin(), contexts.end(),
                          [](const sip_proxy::TlsContext& c) { return c.name == sip_proxy::kServerContext; });
  net::TlsContextConfig tc = def != contexts.end() ? sip_proxy::tlsConfigOf(*def) : net::TlsContextConfig{};
  tc.certFile = cert.certFile.string();
  tc.keyFile = cert.keyFile.string();
  std::error_code ec;
  const bool bundle = !cert.trustBundle.empty() && std::filesystem::file_size(cert.trustBundle, ec) > 0 && !ec;
  tc.caFile = bundle ? cert.trustBundle.string() : cert.caFile.string();
  tc.verifyPeer = !tc.caFile.empty();
  try {
    return net::TlsContext::client(tc);
  } catch (const std::exception& e) {
    *why = e.what();
    return nullptr;
  }
}

void probeNetwork(Facts& f, const NodeSources& node) {
  if (!node.probe.resolver) {
    for (auto id : {kNextHops, kPeerReverseDns, kMicrosoftCertificate, kNodeNames})
      f.unavailable.emplace(std::string(id), "no resolver");
    return;
  }
  // Without the routes or the ACL there is nothing sure to probe.
  if (f.unavailable.count(std::string(kStaticRoutes)) || f.unavailable.count(std::string(kAclCoversNextHops))) {
    const std::string why = "the static routes or the ACL cannot be read";
    for (auto id : {kNextHops, kPeerReverseDns, kMicrosoftCertificate, kNodeNames})
      f.unavailable.emplace(std::string(id), why);
    return;
  }
  ProbeConfig pc = node.probe;
  if (!pc.tls && node.certificate) pc.tls = clientTls(*node.certificate, f.tlsContexts, &pc.tlsError);
  // The sources Microsoft requests come from: the ACL's addresses and the
  // next hops given by address, looked up while the hops are probed.
  std::vector<std::string> ips;
  std::set<std::string> seen;
  auto add = [&](const std::string& ip, std::vector<std::string>& into) {
    if (sip_proxy::canonicalIp(ip) && seen.insert(ip).second) into.push_back(ip);
  };
  for (const auto& e : f.acl)
    if (e.kind == sip_proxy::AclKind::Address) add(e.pattern, ips);
  for (const auto& r : f.routes) add(r.nextHop, ips);
  auto ptr = std::async(std::launch::async, [&] { return reverseLookups(ips, pc); });
  auto names = std::async(std::launch::async, [&] {
    std::vector<std::string> hosts;
    for (const auto& n : f.nodes) hosts.push_back(n.second);
    return forwardLookups(hosts, pc);
  });
  f.hopProbes = probeNextHops(f.routes, pc);
  f.ptrProbes = ptr.get();
  f.nodeNames = names.get();
  // and the addresses the next hops' names resolved to
  std::vector<std::string> more;
  for (const auto& h : f.hopProbes)
    if (!h.addresses.empty()) add(h.addresses.front(), more);
  for (auto& p : reverseLookups(more, pc)) f.ptrProbes.push_back(std::move(p));
}

}  // namespace

Facts gather(const NodeSources& node) {
  Facts f;
  if (!node.database) {
    for (auto id : {kFederationEnabled, kRoutingMode, kStaticRoutes, kNextHops, kAclCoversNextHops, kPeerReverseDns,
                    kNodeNames, kPeerAuthListener, kPeerSubjects, kMicrosoftCertificate, kSingleSystemUsers, kContactLimits})
      f.unavailable.emplace(std::string(id), "no cluster database");
  } else {
    core::Database& db = *node.database;
    sip_proxy::ConfigStore store(db);
    guarded(f, {kFederationEnabled, kRoutingMode}, [&] {
      f.federation = store.federation().settings;
      f.interClusterPeers = static_cast<std::size_t>(db.query("SELECT COUNT(*) AS n FROM sip_intercluster_peer").num(0, "n"));
    });
    guarded(f, {kStaticRoutes, kAclCoversNextHops}, [&] { f.routes = store.routes(); });
    guarded(f, {kAclCoversNextHops}, [&] { f.acl = store.acl(); });
    guarded(f, {kPeerAuthListener}, [&] { f.listeners = store.listeners(); });
    guarded(f, {kPeerSubjects, kMicrosoftCertificate}, [&] {
      f.peerSubjects = store.peerSubjects();
      f.tlsContexts = store.tlsContexts();
    });
    // Domains in use: with partitioned intradomain federation (FED-1) the
    // Microsoft users share IMP's presence domains, and in basic routing mode
    // (FED-6) any recipient of a local domain who is not an IMP user is sent
    // to the Microsoft server, so every presence domain of the cluster
    // (administrator-managed or in use) needs a static route (RT-1).
    guarded(f, {kStaticRoutes}, [&] {
      directory::Directory dir(db);
      for (const auto& d : dir.domains()) f.domains.push_back(d.name);
    });
    // PS-1's limit is read straight from its table (xcp_presence_settings,
    // one row): the troubleshooter does not need the XCP Router module.
    guarded(f, {kNodeNames}, [&] {
      auto rows = db.query("SELECT node_id, hostname FROM core_node ORDER BY node_id");
      for (std::size_t i = 0; i < rows.size(); ++i) f.nodes.emplace_back(rows.str(i, "node_id"), rows.str(i, "hostname"));
    });
    // FED-1: licensed here and still carrying the Microsoft server's address.
    guarded(f, {kSingleSystemUsers}, [&] {
      const char* where = " FROM dir_user WHERE licensed = 1 AND ms_sip_uri IS NOT NULL AND ms_sip_uri <> ''";
      f.dualEnabledUsers = static_cast<std::uint64_t>(db.query(std::string("SELECT COUNT(*) AS n") + where).num(0, "n"));
      auto rows = db.query(std::string("SELECT userid") + where + " ORDER BY userid LIMIT " + std::to_string(kUserSample));
      for (std::size_t i = 0; i < rows.size(); ++i) f.dualEnabledSample.push_back(rows.str(i, "userid"));
    });
    guarded(f, {kContactLimits}, [&] {
      auto rows = db.query("SELECT max_contacts FROM xcp_presence_settings WHERE id = 1");
      if (!rows.empty()) f.maxContacts = static_cast<std::uint32_t>(rows.num(0, "max_contacts"));
      f.homedUsers = static_cast<std::uint64_t>(
          db.query("SELECT COUNT(*) AS n FROM dir_user WHERE home_node = ?", {node.nodeId}).num(0, "n"));
    });
  }
  if (node.certificate) {
    f.certFile = node.certificate->certFile;
    f.caFile = node.certificate->caFile;
    if (node.database)
      guarded(f, {kNodeCertificate}, [&] {
        for (const auto& e : core::TrustStore(*node.database).list()) f.trustPems.push_back(e.info.pem);
      });
  } else {
    f.unavailable.emplace(std::string(kNodeCertificate), "the node has no certificate loaded");
  }
  if (!node.host) {
    f.unavailable.emplace(std::string(kFederationServices), "no service host");
  } else {
    guarded(f, {kFederationServices}, [&] {
      for (const auto& s : node.host->list())
        f.services.push_back({s.name, s.active, s.state == core::ServiceState::Running});
    });
  }
  if (node.database) probeNetwork(f, node);
  return f;
}

}  // namespace imp::troubleshoot
