#pragma once
// The system troubleshooter (SV-6, TLS-5, TS-1..TS-11, HA-2): the checks IMP
// can evaluate from its own side before and while federating with Microsoft
// Lync/OCS. Each check is a pure function over a snapshot of the node's
// configuration (Facts), so it is tested without a database; gather() fills
// the snapshot from the stores (gather.h).
//
// A check reports a stable id, PASS / WARN / FAIL, the requirement it comes
// from, one line of detail and, when not PASS, one line saying what to do.
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <imp/sip_proxy/routes.h>
#include <imp/sip_proxy/settings.h>

#include "imp/troubleshoot/probe.h"

namespace imp::troubleshoot {

enum class Status { Pass, Warn, Fail };
std::string_view nameOf(Status s);  // "PASS", "WARN", "FAIL"

struct CheckResult {
  std::string id;           // "federation-enabled"
  Status status = Status::Pass;
  std::string requirement;  // "FED-1/TS-2"
  std::string detail;
  std::string fix;          // "" when PASS
};

struct ServiceFact {
  std::string name;
  bool active = false;   // selected to run on this node
  bool running = false;
};

struct Facts {
  sip_proxy::FederationSettings federation;
  std::size_t interClusterPeers = 0;
  std::vector<sip_proxy::StaticRoute> routes;
  std::vector<sip_proxy::AclEntry> acl;
  std::vector<sip_proxy::Listener> listeners;
  std::vector<sip_proxy::PeerSubject> peerSubjects;
  std::vector<sip_proxy::TlsContext> tlsContexts;
  // The cluster's presence domains (directory: administrator-managed and in
  // use). With partitioned intradomain federation every one of them is
  // shared with the Microsoft side (FED-1), so each needs a static route.
  std::vector<std::string> domains;
  // The node certificate's files ([tls] in impd.conf or the generated one).
  std::filesystem::path certFile;
  std::filesystem::path caFile;  // [tls] ca_file; empty when none
  std::vector<std::string> trustPems;  // the cluster trust store cup-trust (TLS-4), PEM each
  std::time_t now = 0;           // for expiry; 0 = the current time
  std::vector<ServiceFact> services;
  // What the node saw on the wire (probe.h): each distinct next hop of the
  // static routes, and the PTR lookups of the peers' addresses (the ACL's
  // IP entries and the next hops' addresses).
  std::vector<HopProbe> hopProbes;
  std::vector<PtrProbe> ptrProbes;
  // The cluster's nodes (id, host name) and the A/AAAA lookups of their
  // names (RT-10: the Microsoft servers reach IMP nodes by FQDN).
  std::vector<std::pair<std::string, std::string>> nodes;
  std::vector<NameProbe> nodeNames;
  // FED-1: users licensed on IMP whose directory entry also carries a
  // Microsoft SIP URI (msRTCSIP-PrimaryUserAddress, set while the user is
  // enabled on the Microsoft server): how many, and the first few ids.
  std::uint64_t dualEnabledUsers = 0;
  std::vector<std::string> dualEnabledSample;
  std::uint32_t maxContacts = 200;  // PS-1; 0 = no limit
  std::uint64_t homedUsers = 0;     // users whose home node is this node
  // Check id -> why its facts could not be read; that check is a FAIL.
  std::map<std::string, std::string> unavailable;
};

// Check ids, in report order.
inline constexpr std::string_view kFederationEnabled = "federation-enabled";
inline constexpr std::string_view kRoutingMode = "routing-mode";
inline constexpr std::string_view kStaticRoutes = "static-routes";
inline constexpr std::string_view kNextHops = "next-hops";
inline constexpr std::string_view kAclCoversNextHops = "acl-covers-next-hops";
inline constexpr std::string_view kPeerReverseDns = "peer-reverse-dns";
inline constexpr std::string_view kNodeNames = "node-names";
inline constexpr std::string_view kPeerAuthListener = "peer-auth-listener";
inline constexpr std::string_view kPeerSubjects = "peer-subjects";
inline constexpr std::string_view kMicrosoftCertificate = "microsoft-certificate";
inline constexpr std::string_view kNodeCertificate = "node-certificate";
inline constexpr std::string_view kFederationServices = "federation-services";
inline constexpr std::string_view kSingleSystemUsers = "single-system-users";
inline constexpr std::string_view kContactLimits = "contact-limits";

// The services federation needs on this node (SV-6, TS-2).
const std::vector<std::string>& federationServices();
// HA-2: contact-limits warns above this share of the node's capacity and
// fails above all of it.
inline constexpr std::uint64_t kCapacityWarnPercent = 80;
// HA-2: the average contact-list size assumed when there is no limit.
inline constexpr std::uint32_t kAssumedAverageContacts = 200;
// RT-8: a reverse lookup slower than this fails peer-reverse-dns (the
// original product logged "incoming ACL check took over 2 seconds").
inline constexpr double kSlowDnsMs = 2000;
// dualEnabledSample holds at most this many user ids.
inline constexpr std::size_t kUserSample = 5;
// node-certificate warns when the certificate expires within this many days.
inline constexpr int kExpiryWarningDays = 30;

CheckResult checkFederationEnabled(const Facts& f);
CheckResult checkRoutingMode(const Facts& f);
CheckResult checkStaticRoutes(const Facts& f);
CheckResult checkNextHops(const Facts& f);
CheckResult checkAclCoversNextHops(const Facts& f);
CheckResult checkPeerReverseDns(const Facts& f);
CheckResult checkNodeNames(const Facts& f);
CheckResult checkPeerAuthListener(const Facts& f);
CheckResult checkPeerSubjects(const Facts& f);
CheckResult checkMicrosoftCertificate(const Facts& f);
CheckResult checkNodeCertificate(const Facts& f);
CheckResult checkFederationServices(const Facts& f);
CheckResult checkSingleSystemUsers(const Facts& f);
CheckResult checkContactLimits(const Facts& f);

// Every check in report order; a check whose facts are unavailable is a FAIL
// naming why.
std::vector<CheckResult> runChecks(const Facts& f);

// "12 checks: 10 pass, 1 warn, 1 fail"
std::string summary(const std::vector<CheckResult>& results);

}  // namespace imp::troubleshoot
