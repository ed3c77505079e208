// impctl: a thin client of impd's admin API (SV-1, SV-3, SV-4). Every command
// maps to one HTTP request; what the server answers is shown as a table, or
// as raw JSON with --json. Exit codes are documented in impctl(8).

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/URI.h>

#include <boost/program_options.hpp>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli.h"

using namespace impctl;

namespace {

const char* kUsageText = R"(Usage: impctl [global options] COMMAND

Commands:
  status [--cluster]
  service list [--node ID]
  service activate|deactivate|start|stop|restart NAME [--node ID]
  trace show [SERVICE] [--node ID]
  trace set SERVICE [--level L] [--on|--off] [--flag F]... [--clear-flags] [--node ID]
  db status
  db migrate
  user add USERID --im-address ADDR [--unlicensed] [--home-node ID] [--ms-uri sip:USER@DOMAIN]
  user list [--domain DOMAIN] | user show USERID | user delete USERID
  domain add DOMAIN [--description TEXT] | domain list | domain delete DOMAIN
  federation show | federation enable|disable [--routing-mode basic|advanced]
  federation set [--routing-mode basic|advanced] [--email-for-interdomain on|off]
  listener list | listener set tcp|tls-server-auth|tls-peer-auth|udp [--port P] [--enable|--disable]
  tls peer-subject add CN [--description TEXT] | tls peer-subject list | tls peer-subject delete CN
  tls context list
  tls context set NAME [--ciphers LIST] [--min-version 1.0|1.1|1.2|1.3] [--max-version V]
      [--disable-empty-fragments|--enable-empty-fragments] [--peer-subject CN]... [--clear-peer-subjects]
  acl add all|IP|DOMAIN [--description TEXT] | acl list | acl delete PATTERN
  route add PATTERN --route-type domain|user --next-hop HOST [--port P] [--transport TCP|TLS|UDP]
      [--priority N] [--weight N]
  route list | route delete ID | route lookup USER@DOMAIN
  ban list | ban clear [IP]           (flood-limiter bans on this node)
  proxy stats                         (SIP proxy counters on this node)

See impctl(8).
)";

void printServices(const Arr::Ptr& services) {
  std::vector<std::vector<std::string>> rows = {
      {"SERVICE", "DISPLAY NAME", "KIND", "ACTIVE", "STATE", "UPTIME", "RESTARTS", "DETAIL"}};
  for (const auto& v : *services) {
    auto s = v.extract<Obj::Ptr>();
    rows.push_back({str(s, "name"), str(s, "display_name"), s->has("kind") ? str(s, "kind") : "-",
                    s->getValue<bool>("active") ? "yes" : "no", str(s, "state"),
                    duration(s->getValue<long long>("uptime_s")), str(s, "restarts"), str(s, "detail")});
  }
  table(rows);
}

void printTrace(const Obj::Ptr& t) {
  std::string flags;
  for (const auto& f : *t->getArray("flags")) flags += (flags.empty() ? "" : ",") + f.convert<std::string>();
  std::string avail;
  for (const auto& f : *t->getArray("available_flags"))
    avail += (avail.empty() ? "" : ",") + f.extract<Obj::Ptr>()->getValue<std::string>("id");
  std::cout << std::left << std::setw(18) << str(t, "service") << std::setw(5)
            << (t->getValue<bool>("enabled") ? "on" : "off") << std::setw(10) << str(t, "level")
            << "flags=[" << flags << "]" << (avail.empty() ? "" : " available=[" + avail + "]") << "\n";
}

int dispatch(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  auto need = [&](std::size_t n, const char* what) {
    if (w.size() != n) throw Exit{kUsage, std::string("usage: impctl ") + what};
  };
  if (w[0] == "status") {
    need(1, "status [--cluster]");
    if (a.cluster) {
      auto o = c.request("GET", "/api/v1/cluster/nodes", "", a.json);
      if (a.json) return kOk;
      std::vector<std::vector<std::string>> rows = {{"NODE", "ROLE", "STATE", "HEARTBEAT", "ADMIN", "SERVICES"}};
      for (const auto& v : *o->getArray("nodes")) {
        auto n = v.extract<Obj::Ptr>();
        std::string services;
        for (const auto& sv : *n->getArray("services")) {
          auto s = sv.extract<Obj::Ptr>();
          services += (services.empty() ? "" : " ") + str(s, "name") + "=" + str(s, "state");
        }
        rows.push_back({str(n, "id") + (n->getValue<bool>("self") ? " *" : ""), str(n, "role"), str(n, "state"),
                        str(n, "heartbeat_age_s") + "s ago", str(n, "admin_url"), services});
      }
      table(rows);
      return kOk;
    }
    auto o = c.request("GET", "/api/v1/status", "", a.json);
    if (a.json) return kOk;
    auto node = o->getObject("node");
    auto db = o->getObject("database");
    std::cout << "node:      " << str(node, "id") << " (role " << str(node, "role") << ", version " << str(node, "version")
              << ", up " << duration(node->getValue<long long>("uptime_s")) << ")\n";
    std::cout << "admin:     " << str(node, "admin_url") << "\n";
    std::cout << "database:  " << str(db, "location") << ", " << (db->getValue<bool>("reachable") ? "reachable" : "UNREACHABLE")
              << ", settings generation " << str(db, "settings_generation") << "\n";
    std::cout << "ready:     " << (o->getValue<bool>("ready") ? "yes" : "no");
    if (o->has("not_ready_reasons"))
      for (const auto& r : *o->getArray("not_ready_reasons")) std::cout << " - " << r.convert<std::string>();
    std::cout << "\n\n";
    printServices(o->getArray("services"));
    return kOk;
  }
  if (w[0] == "service") {
    if (w.size() < 2) throw Exit{kUsage, "usage: impctl service list|activate|deactivate|start|stop|restart NAME [--node ID]"};
    if (w[1] == "list") {
      need(2, "service list [--node ID]");
      auto o = c.request("GET", "/api/v1/services" + nodeQuery(a.node), "", a.json);
      if (a.json) return kOk;
      std::cout << "node: " << str(o, "node") << (o->has("published") ? " (as last published by its ris-collector)" : "") << "\n";
      printServices(o->getArray("services"));
      return kOk;
    }
    need(3, "service activate|deactivate|start|stop|restart NAME [--node ID]");
    int status = 0;
    auto o = c.request("POST", "/api/v1/services/" + pathPart(w[2]) + "/" + pathPart(w[1]) + nodeQuery(a.node), "", a.json,
                       &status);
    if (!a.json) std::cout << str(o, "message") << (status == 202 ? " (pending)" : "") << "\n";
    return kOk;
  }
  if (w[0] == "trace") {
    if (w.size() < 2) throw Exit{kUsage, "usage: impctl trace show [SERVICE] | trace set SERVICE ..."};
    if (w[1] == "show") {
      if (w.size() > 3) throw Exit{kUsage, "usage: impctl trace show [SERVICE] [--node ID]"};
      if (w.size() == 3) {
        auto o = c.request("GET", "/api/v1/trace/" + pathPart(w[2]) + nodeQuery(a.node), "", a.json);
        if (!a.json) printTrace(o);
        return kOk;
      }
      auto o = c.request("GET", "/api/v1/trace" + nodeQuery(a.node), "", a.json);
      if (a.json) return kOk;
      std::cout << "node: " << str(o, "node") << "\n";
      for (const auto& v : *o->getArray("traces")) printTrace(v.extract<Obj::Ptr>());
      return kOk;
    }
    if (w[1] == "set") {
      need(3, "trace set SERVICE [--level L] [--on|--off] [--flag F]... [--clear-flags] [--node ID]");
      if (a.on && a.off) throw Exit{kUsage, "--on and --off exclude each other"};
      if (!a.flags.empty() && a.clearFlags) throw Exit{kUsage, "--flag and --clear-flags exclude each other"};
      Obj body;
      if (a.on || a.off) body.set("enabled", a.on);
      if (!a.level.empty()) body.set("level", a.level);
      if (!a.flags.empty() || a.clearFlags) {
        Arr::Ptr f = new Arr;
        for (const auto& x : a.flags) f->add(x);
        body.set("flags", f);
      }
      if (body.size() == 0) throw Exit{kUsage, "trace set needs --level, --on, --off, --flag or --clear-flags"};
      std::ostringstream b;
      body.stringify(b);
      auto o = c.request("PUT", "/api/v1/trace/" + pathPart(w[2]) + nodeQuery(a.node), b.str(), a.json);
      if (!a.json) {
        printTrace(o);
        std::cout << "applied " << str(o, "applied") << " on " << str(o, "node") << "\n";
      }
      return kOk;
    }
    throw Exit{kUsage, "unknown trace command '" + w[1] + "'; use show or set"};
  }
  if (w[0] == "db") {
    if (w.size() != 2 || (w[1] != "status" && w[1] != "migrate")) throw Exit{kUsage, "usage: impctl db status|migrate"};
    if (w[1] == "status") {
      auto o = c.request("GET", "/api/v1/db/status", "", a.json);
      if (a.json) return kOk;
      std::cout << "database: " << str(o, "location") << " (" << str(o, "mode") << "), "
                << (o->getValue<bool>("reachable") ? "reachable" : "UNREACHABLE") << "\n";
      std::vector<std::vector<std::string>> rows = {{"VERSION", "MIGRATION", "STATE", "APPLIED AT", "BY"}};
      for (const auto& v : *o->getArray("applied")) {
        auto m = v.extract<Obj::Ptr>();
        rows.push_back({str(m, "version"), str(m, "name"), "applied", str(m, "applied_at"), str(m, "applied_by")});
      }
      for (const auto& v : *o->getArray("pending")) {
        auto m = v.extract<Obj::Ptr>();
        rows.push_back({str(m, "version"), str(m, "name"), "PENDING", "-", "-"});
      }
      table(rows);
      return kOk;
    }
    auto o = c.request("POST", "/api/v1/db/migrate", "", a.json);
    if (a.json) return kOk;
    auto applied = o->getArray("applied");
    if (applied->size() == 0) std::cout << "schema is up to date (version " << str(o, "schema_version") << ")\n";
    for (const auto& m : *applied) std::cout << "applied " << m.convert<std::string>() << "\n";
    return kOk;
  }
  if (w[0] == "user") return userCommand(a, c);
  if (w[0] == "domain") return domainCommand(a, c);
  if (w[0] == "federation") return federationCommand(a, c);
  if (w[0] == "listener") return listenerCommand(a, c);
  if (w[0] == "tls") return tlsCommand(a, c);
  if (w[0] == "acl") return aclCommand(a, c);
  if (w[0] == "ban") return banCommand(a, c);
  if (w[0] == "proxy") return proxyCommand(a, c);
  if (w[0] == "route") return routeCommand(a, c);
  throw Exit{kUsage, "unknown command '" + w[0] + "'"};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  po::options_description desc("Global options");
  desc.add_options()("help,h", "show this help")("version", "print the version")(
      "config,c", po::value<std::string>(&a.config)->default_value(a.config), "impd.conf to read the admin address and token from")(
      "url", po::value<std::string>(&a.url), "admin API URL (overrides impd.conf)")(
      "token-file", po::value<std::string>(&a.tokenFile), "file holding the admin token")(
      "json", po::bool_switch(&a.json), "print the server's JSON")(
      "node", po::value<std::string>(&a.node), "act on another node of the cluster")(
      "cluster", po::bool_switch(&a.cluster), "status: every node of the cluster")(
      "level", po::value<std::string>(&a.level), "trace set: trace|debug|info|warn|error|critical")(
      "on", po::bool_switch(&a.on), "trace set: trace on")("off", po::bool_switch(&a.off), "trace set: trace off")(
      "flag", po::value<std::vector<std::string>>(&a.flags), "trace set: an extra trace flag (repeatable)")(
      "clear-flags", po::bool_switch(&a.clearFlags), "trace set: remove every extra flag")(
      "im-address", po::value<std::string>(&a.imAddress), "user add: the user's IM address")(
      "unlicensed", po::bool_switch(&a.unlicensed), "user add: not licensed for IM on IMP")(
      "home-node", po::value<std::string>(&a.homeNode), "user add: the user's home node")(
      "ms-uri", po::value<std::string>(&a.msUri), "user add: Microsoft SIP URI (advanced routing)")(
      "domain", po::value<std::string>(&a.domain), "user list: only this IM domain")(
      "description", po::value<std::string>(&a.description), "domain/acl/tls peer-subject add: a description")(
      "routing-mode", po::value<std::string>(), "federation enable|disable|set: basic or advanced")(
      "email-for-interdomain", po::value<std::string>(), "federation set: on or off (FED-5)")(
      "port", po::value<std::string>(), "listener set / route add: a port 1..65535")(
      "enable", po::bool_switch(), "listener set: enable the listener")(
      "disable", po::bool_switch(), "listener set: disable the listener")(
      "ciphers", po::value<std::string>(), "tls context set: OpenSSL cipher list (TLS_* = TLS 1.3 suites)")(
      "min-version", po::value<std::string>(), "tls context set: 1.0|1.1|1.2|1.3")(
      "max-version", po::value<std::string>(), "tls context set: 1.0|1.1|1.2|1.3")(
      "disable-empty-fragments", po::bool_switch(), "tls context set: disable empty TLS fragments")(
      "enable-empty-fragments", po::bool_switch(), "tls context set: allow empty TLS fragments")(
      "peer-subject", po::value<std::vector<std::string>>(), "tls context set: a selected peer subject (repeatable)")(
      "clear-peer-subjects", po::bool_switch(), "tls context set: select no peer subject")(
      "route-type", po::value<std::string>(), "route add: domain or user")(
      "next-hop", po::value<std::string>(), "route add: IP address or FQDN")(
      "transport", po::value<std::string>(), "route add: TCP, TLS (default) or UDP")(
      "priority", po::value<std::string>(), "route add: 1 (primary, default) .. 65535")(
      "weight", po::value<std::string>(), "route add: 1 (default) .. 65535")(
      "words", po::value<std::vector<std::string>>(&a.words), "command words");
  po::positional_options_description pos;
  pos.add("words", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
    a.vm = &vm;
  } catch (const po::error& e) {
    std::cerr << "impctl: " << e.what() << "\n\n" << kUsageText;
    return kUsage;
  }
  if (vm.count("help")) {
    std::cout << kUsageText << "\n" << desc << "\n";
    return kOk;
  }
  if (vm.count("version")) {
    std::cout << "impctl " << IMP_VERSION << "\n";
    return kOk;
  }
  if (a.words.empty()) {
    std::cerr << kUsageText;
    return kUsage;
  }
  // Options that belong to one command only.
  auto only = [&](bool used, const char* opt, bool allowed) {
    if (used && !allowed) throw Exit{kUsage, std::string(opt) + " does not apply to '" + a.words[0] + "'"};
  };
  try {
    bool traceSet = a.words.size() > 1 && a.words[0] == "trace" && a.words[1] == "set";
    only(a.cluster, "--cluster", a.words[0] == "status");
    only(!a.node.empty(), "--node", a.words[0] == "service" || a.words[0] == "trace");
    only(!a.level.empty() || a.on || a.off || !a.flags.empty() || a.clearFlags, "--level/--on/--off/--flag/--clear-flags",
         traceSet);
    bool userAdd = a.words.size() > 1 && a.words[0] == "user" && a.words[1] == "add";
    only(!a.imAddress.empty() || a.unlicensed || !a.homeNode.empty() || !a.msUri.empty(),
         "--im-address/--unlicensed/--home-node/--ms-uri", userAdd);
    only(!a.domain.empty(), "--domain", a.words.size() > 1 && a.words[0] == "user" && a.words[1] == "list");
    auto is = [&](const char* w0, const char* w1, const char* w2 = nullptr) {
      return a.words.size() > 1 && a.words[0] == w0 && a.words[1] == w1 &&
             (!w2 || (a.words.size() > 2 && a.words[2] == w2));
    };
    only(!a.description.empty(), "--description",
         is("domain", "add") || is("acl", "add") || is("tls", "peer-subject", "add"));
    only(vm.count("routing-mode"), "--routing-mode",
         is("federation", "enable") || is("federation", "disable") || is("federation", "set"));
    only(vm.count("email-for-interdomain"), "--email-for-interdomain", is("federation", "set"));
    only(vm.count("port"), "--port", is("listener", "set") || is("route", "add"));
    only(flag(a, "enable") || flag(a, "disable"), "--enable/--disable", is("listener", "set"));
    only(vm.count("ciphers") || vm.count("min-version") || vm.count("max-version") ||
             flag(a, "disable-empty-fragments") || flag(a, "enable-empty-fragments") || vm.count("peer-subject") ||
             flag(a, "clear-peer-subjects"),
         "--ciphers/--min-version/--max-version/--disable-empty-fragments/--enable-empty-fragments/--peer-subject/"
         "--clear-peer-subjects",
         is("tls", "context", "set"));
    only(vm.count("route-type") || vm.count("next-hop") || vm.count("transport") ||
             vm.count("priority") || vm.count("weight"),
         "--route-type/--next-hop/--transport/--priority/--weight", is("route", "add"));
    return dispatch(a, LazyClient{a, vm, std::nullopt});
  } catch (const Exit& e) {
    std::cerr << "impctl: " << e.message << "\n";
    if (e.code == kUsage) std::cerr << "\n" << kUsageText;
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "impctl: " << e.what() << "\n";
    return kServerError;
  }
}
