#include "imp/troubleshoot/gather.h"

#include <imp/core/cert_store.h>
#include <imp/core/certificates.h>
#include <imp/core/database.h>
#include <imp/core/service_host.h>
#include <imp/directory/directory.h>
#include <imp/sip_proxy/config_store.h>

#include <exception>
#include <functional>
#include <initializer_list>

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

}  // namespace

Facts gather(const NodeSources& node) {
  Facts f;
  if (!node.database) {
    for (auto id : {kFederationEnabled, kRoutingMode, kStaticRoutes, kAclCoversNextHops, kPeerAuthListener,
                    kPeerSubjects, kContactLimits})
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
    guarded(f, {kPeerSubjects}, [&] {
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
  return f;
}

}  // namespace imp::troubleshoot
