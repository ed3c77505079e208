// impctl federation / listener / tls / acl / route ... (SIP Proxy settings:
// FED-4..6, TLS-1..3, RT-2/3, RT-7). Every check happens in impd; these
// commands only shape the request and print the answer.
#include <iostream>

#include "cli.h"

namespace impctl {

namespace {

std::vector<std::string> many(const Args& a, const char* name) {
  if (!a.vm || !a.vm->count(name)) return {};
  return (*a.vm)[name].as<std::vector<std::string>>();
}

// Whole numbers travel as JSON numbers; anything else is sent as typed, so
// impd names the field and the value in its refusal.
void setNumber(Obj& body, const std::string& field, const std::string& text) {
  bool digits = !text.empty() && text.size() <= 18;
  for (std::size_t i = 0; i < text.size() && digits; ++i)
    digits = (text[i] >= '0' && text[i] <= '9') || (i == 0 && text[i] == '-' && text.size() > 1);
  if (digits) body.set(field, static_cast<Poco::Int64>(std::stoll(text)));
  else body.set(field, text);
}

std::vector<Obj::Ptr> objects(const Obj::Ptr& o, const std::string& key) {
  std::vector<Obj::Ptr> out;
  for (const auto& v : *o->getArray(key)) out.push_back(v.extract<Obj::Ptr>());
  return out;
}

std::string joined(const Obj::Ptr& o, const std::string& key) {
  std::string s;
  for (const auto& v : *o->getArray(key)) {
    if (!s.empty()) s += ',';  // not "," + std::string: GCC 12 -O3 false -Wrestrict (GCC bug 105329)
    s += v.convert<std::string>();
  }
  return s.empty() ? "-" : s;
}

bool yes(const Obj::Ptr& o, const std::string& k) { return o->getValue<bool>(k); }

void printWarnings(const Obj::Ptr& o) {
  if (!o->has("warnings")) return;
  for (const auto& v : *o->getArray("warnings")) std::cout << "WARNING: " << v.convert<std::string>() << "\n";
}

void printFederation(const Obj::Ptr& o) {
  std::cout << "partitioned intradomain federation:         " << (yes(o, "enabled") ? "enabled" : "disabled") << "\n"
            << "routing mode:                               " << str(o, "routing_mode") << "\n"
            << "email address for inter-domain federation:  " << (yes(o, "email_for_interdomain") ? "on" : "off") << "\n";
}

}  // namespace

int federationCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  const char* usage =
      "usage: impctl federation show | federation enable|disable [--routing-mode basic|advanced] | "
      "federation set [--routing-mode basic|advanced] [--email-for-interdomain on|off]";
  if (w.size() != 2) throw Exit{kUsage, usage};
  if (w[1] == "show") {
    auto o = c.request("GET", "/api/v1/federation", "", a.json);
    if (a.json) return kOk;
    printFederation(o);
    auto changes = objects(o, "recent_changes");
    if (changes.empty()) std::cout << "last change:                                never (defaults)\n";
    for (std::size_t i = 0; i < changes.size(); ++i)
      std::cout << (i == 0 ? "last change:                                " : "                                            ")
                << str(changes[i], "at") << "  " << str(changes[i], "what") << "\n";
    return kOk;
  }
  if (w[1] != "enable" && w[1] != "disable" && w[1] != "set") throw Exit{kUsage, usage};
  Obj body;
  if (w[1] != "set") body.set("enabled", w[1] == "enable");
  if (auto m = opt(a, "routing-mode"); !m.empty()) body.set("routing_mode", m);
  if (auto e = opt(a, "email-for-interdomain"); !e.empty()) {
    if (e != "on" && e != "off") throw Exit{kUsage, "--email-for-interdomain takes on or off"};
    body.set("email_for_interdomain", e == "on");
  }
  if (body.size() == 0) throw Exit{kUsage, "federation set needs --routing-mode or --email-for-interdomain"};
  auto o = c.request("PUT", "/api/v1/federation", jsonBody(body), a.json);
  if (a.json) return kOk;
  printWarnings(o);
  printFederation(o);
  std::cout << "applied: " << str(o, "applied") << "\n";
  return kOk;
}

int listenerCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  const char* usage =
      "usage: impctl listener list | listener set tcp|tls-server-auth|tls-peer-auth|udp [--port P] [--enable|--disable]";
  auto print = [](const std::vector<Obj::Ptr>& ls) {
    std::vector<std::vector<std::string>> rows = {{"NAME", "TRANSPORT", "AUTH", "ENABLED", "PORT", "DEFAULT", "DISPLAY NAME"}};
    for (const auto& l : ls)
      rows.push_back({str(l, "name"), str(l, "transport"), str(l, "auth"), yes(l, "enabled") ? "yes" : "no", str(l, "port"),
                      str(l, "default_port"), str(l, "display_name")});
    table(rows);
  };
  if (w.size() == 2 && w[1] == "list") {
    auto o = c.request("GET", "/api/v1/listeners", "", a.json);
    if (!a.json) print(objects(o, "listeners"));
    return kOk;
  }
  if (w.size() == 3 && w[1] == "set") {
    if (flag(a, "enable") && flag(a, "disable")) throw Exit{kUsage, "--enable and --disable exclude each other"};
    Obj body;
    if (auto p = opt(a, "port"); !p.empty()) setNumber(body, "port", p);
    if (flag(a, "enable") || flag(a, "disable")) body.set("enabled", flag(a, "enable"));
    if (body.size() == 0) throw Exit{kUsage, "listener set needs --port, --enable or --disable"};
    auto o = c.request("PUT", "/api/v1/listeners/" + pathPart(w[2]), jsonBody(body), a.json);
    if (!a.json) print({o});
    return kOk;
  }
  throw Exit{kUsage, usage};
}

int tlsCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  const char* usage =
      "usage: impctl tls peer-subject add CN [--description TEXT] | tls peer-subject list | tls peer-subject delete CN |\n"
      "       impctl tls context list | tls context set NAME [--ciphers LIST] [--min-version V] [--max-version V]\n"
      "         [--disable-empty-fragments|--enable-empty-fragments] [--peer-subject CN]... [--clear-peer-subjects]";
  if (w.size() < 3) throw Exit{kUsage, usage};
  if (w[1] == "peer-subject") {
    auto print = [](const std::vector<Obj::Ptr>& ps) {
      std::vector<std::vector<std::string>> rows = {{"SUBJECT CN", "USED BY", "DESCRIPTION"}};
      for (const auto& p : ps) rows.push_back({str(p, "subject_cn"), joined(p, "used_by"), str(p, "description")});
      table(rows);
    };
    if (w.size() == 3 && w[2] == "list") {
      auto o = c.request("GET", "/api/v1/tls/peer-subjects", "", a.json);
      if (!a.json) print(objects(o, "peer_subjects"));
      return kOk;
    }
    if (w.size() == 4 && w[2] == "add") {
      Obj body;
      body.set("subject_cn", w[3]);
      if (!a.description.empty()) body.set("description", a.description);
      auto o = c.request("POST", "/api/v1/tls/peer-subjects", jsonBody(body), a.json);
      if (!a.json) print({o});
      return kOk;
    }
    if (w.size() == 4 && w[2] == "delete") {
      auto o = c.request("DELETE", "/api/v1/tls/peer-subjects/" + pathPart(w[3]), "", a.json);
      if (!a.json) std::cout << "deleted TLS peer subject " << str(o, "deleted") << "\n";
      return kOk;
    }
    throw Exit{kUsage, usage};
  }
  if (w[1] == "context") {
    auto print = [](const std::vector<Obj::Ptr>& cs) {
      std::vector<std::vector<std::string>> rows = {
          {"NAME", "MIN", "MAX", "DISABLE EMPTY FRAGMENTS", "PEER SUBJECTS", "CIPHERS", "DISPLAY NAME"}};
      for (const auto& x : cs)
        rows.push_back({str(x, "name"), str(x, "min_version"), str(x, "max_version"),
                        yes(x, "disable_empty_fragments") ? "yes" : "no", joined(x, "peer_subjects"),
                        str(x, "ciphers"), str(x, "display_name")});
      table(rows);
    };
    if (w.size() == 3 && w[2] == "list") {
      auto o = c.request("GET", "/api/v1/tls/contexts", "", a.json);
      if (!a.json) print(objects(o, "contexts"));
      return kOk;
    }
    if (w.size() == 4 && w[2] == "set") {
      if (flag(a, "disable-empty-fragments") && flag(a, "enable-empty-fragments"))
        throw Exit{kUsage, "--disable-empty-fragments and --enable-empty-fragments exclude each other"};
      auto subjects = many(a, "peer-subject");
      if (!subjects.empty() && flag(a, "clear-peer-subjects"))
        throw Exit{kUsage, "--peer-subject and --clear-peer-subjects exclude each other"};
      Obj body;
      if (a.vm && a.vm->count("ciphers")) body.set("ciphers", opt(a, "ciphers"));
      if (auto v = opt(a, "min-version"); !v.empty()) body.set("min_version", v);
      if (auto v = opt(a, "max-version"); !v.empty()) body.set("max_version", v);
      if (flag(a, "disable-empty-fragments") || flag(a, "enable-empty-fragments"))
        body.set("disable_empty_fragments", flag(a, "disable-empty-fragments"));
      if (!subjects.empty() || flag(a, "clear-peer-subjects")) {
        Arr::Ptr list = new Arr;
        for (const auto& s : subjects) list->add(s);
        body.set("peer_subjects", list);
      }
      if (body.size() == 0)
        throw Exit{kUsage,
                   "tls context set needs --ciphers, --min-version, --max-version, --disable-empty-fragments, "
                   "--enable-empty-fragments, --peer-subject or --clear-peer-subjects"};
      auto o = c.request("PUT", "/api/v1/tls/contexts/" + pathPart(w[3]), jsonBody(body), a.json);
      if (a.json) return kOk;
      printWarnings(o);
      print({o});
      return kOk;
    }
  }
  throw Exit{kUsage, usage};
}

int aclCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  auto print = [](const std::vector<Obj::Ptr>& es) {
    std::vector<std::vector<std::string>> rows = {{"PATTERN", "KIND", "DESCRIPTION"}};
    for (const auto& e : es) rows.push_back({str(e, "pattern"), str(e, "kind"), str(e, "description")});
    table(rows);
  };
  if (w.size() == 2 && w[1] == "list") {
    auto o = c.request("GET", "/api/v1/acl", "", a.json);
    if (!a.json) print(objects(o, "acl"));
    return kOk;
  }
  if (w.size() == 3 && w[1] == "add") {
    Obj body;
    body.set("pattern", w[2]);
    if (!a.description.empty()) body.set("description", a.description);
    auto o = c.request("POST", "/api/v1/acl", jsonBody(body), a.json);
    if (!a.json) print({o});
    return kOk;
  }
  if (w.size() == 3 && w[1] == "delete") {
    auto o = c.request("DELETE", "/api/v1/acl/" + pathPart(w[2]), "", a.json);
    if (!a.json) std::cout << "deleted incoming ACL entry " << str(o, "deleted") << "\n";
    return kOk;
  }
  throw Exit{kUsage, "usage: impctl acl add all|IP|DOMAIN [--description TEXT] | acl list | acl delete PATTERN"};
}

// Flood-limiter bans of the node impctl talks to (--url / its impd.conf).
int banCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  if (w.size() == 2 && w[1] == "list") {
    auto o = c.request("GET", "/api/v1/sip-proxy/bans", "", a.json);
    if (a.json) return kOk;
    auto bans = objects(o, "bans");
    if (bans.empty()) {
      std::cout << "no address is banned\n";
      return kOk;
    }
    std::vector<std::vector<std::string>> rows = {{"ADDRESS", "EXPIRES IN", "REFUSED"}};
    for (const auto& b : bans)
      rows.push_back({str(b, "address"), duration(b->getValue<Poco::Int64>("expires_in_s")), str(b, "refused")});
    table(rows);
    return kOk;
  }
  if ((w.size() == 2 || w.size() == 3) && w[1] == "clear") {
    std::string path = "/api/v1/sip-proxy/bans" + (w.size() == 3 ? "/" + pathPart(w[2]) : std::string());
    auto o = c.request("DELETE", path, "", a.json);
    if (!a.json) std::cout << "lifted " << str(o, "cleared") << " ban(s)\n";
    return kOk;
  }
  throw Exit{kUsage, "usage: impctl ban list | ban clear [IP]"};
}

int proxyCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  if (w.size() == 2 && w[1] == "stats") {
    auto o = c.request("GET", "/api/v1/sip-proxy/stats", "", a.json);
    if (a.json) return kOk;
    for (const char* k : {"requests", "forwarded", "failovers", "acl_refused", "loops", "stateless_forwards",
                          "flood_refused", "overloaded", "directory_lookups", "directory_cache_hits", "rejected",
                          "responses_unsent", "parse_errors", "error_responses_sent", "error_responses_unsent",
                          "malformed_responses_dropped"})
      std::cout << k << ": " << str(o, k) << "\n";
    auto down = joined(o, "next_hops_down");
    std::cout << "next hops down: " << (down == "-" ? "none" : down) << "\n";
    return kOk;
  }
  throw Exit{kUsage, "usage: impctl proxy stats"};
}

int routeCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  const char* usage =
      "usage: impctl route add PATTERN --route-type domain|user --next-hop HOST [--port P] [--transport TCP|TLS|UDP]\n"
      "         [--priority N] [--weight N] | route list | route delete ID | route lookup USER@DOMAIN";
  auto print = [](const std::vector<Obj::Ptr>& rs) {
    std::vector<std::vector<std::string>> rows = {{"ID", "PATTERN", "TYPE", "NEXT HOP", "PORT", "TRANSPORT", "PRIORITY", "WEIGHT"}};
    for (const auto& r : rs)
      rows.push_back({str(r, "id"), str(r, "pattern"), str(r, "route_type"), str(r, "next_hop"), str(r, "port"),
                      str(r, "transport"), str(r, "priority"), str(r, "weight")});
    table(rows);
  };
  if (w.size() == 2 && w[1] == "list") {
    auto o = c.request("GET", "/api/v1/routes", "", a.json);
    if (!a.json) print(objects(o, "routes"));
    return kOk;
  }
  if (w.size() == 3 && w[1] == "add") {
    Obj body;
    body.set("pattern", w[2]);
    // Required fields are left to impd, which names what is missing.
    if (auto v = opt(a, "route-type"); !v.empty()) body.set("route_type", v);
    if (auto v = opt(a, "next-hop"); !v.empty()) body.set("next_hop", v);
    if (auto v = opt(a, "transport"); !v.empty()) body.set("transport", v);
    if (auto v = opt(a, "port"); !v.empty()) setNumber(body, "port", v);
    if (auto v = opt(a, "priority"); !v.empty()) setNumber(body, "priority", v);
    if (auto v = opt(a, "weight"); !v.empty()) setNumber(body, "weight", v);
    auto o = c.request("POST", "/api/v1/routes", jsonBody(body), a.json);
    if (!a.json) print({o});
    return kOk;
  }
  if (w.size() == 3 && w[1] == "delete") {
    auto o = c.request("DELETE", "/api/v1/routes/" + pathPart(w[2]), "", a.json);
    if (!a.json) std::cout << "deleted static route " << str(o, "deleted") << "\n";
    return kOk;
  }
  if (w.size() == 3 && w[1] == "lookup") {
    auto o = c.request("GET", "/api/v1/routing/decision?recipient=" + queryPart(w[2]), "", a.json);
    if (a.json) return kOk;
    std::string d = str(o, "decision");
    std::cout << str(o, "recipient") << ": " << d;
    if (d == "local_user") std::cout << " (home node " << str(o, "home_node") << ")";
    if (d == "reject") std::cout << " " << str(o, "status");
    std::cout << "\n" << str(o, "reason") << "\n";
    auto routes = objects(o, "routes");
    if (!routes.empty()) print(routes);
    return kOk;
  }
  throw Exit{kUsage, usage};
}

}  // namespace impctl
