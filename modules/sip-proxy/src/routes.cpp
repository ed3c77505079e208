#include "imp/sip_proxy/routes.h"

#include <imp/sip/uri.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <tuple>

#include "imp/sip_proxy/settings.h"

namespace imp::sip_proxy {

std::string_view nameOf(RouteType t) { return t == RouteType::Domain ? "domain" : "user"; }

std::optional<RouteType> parseRouteType(std::string_view s) {
  auto l = lower(s);
  if (l == "domain") return RouteType::Domain;
  if (l == "user") return RouteType::User;
  return std::nullopt;
}

std::string_view nameOf(Transport t) {
  switch (t) {
    case Transport::Tcp: return "TCP";
    case Transport::Tls: return "TLS";
    case Transport::Udp: return "UDP";
  }
  return "?";
}

std::optional<Transport> parseTransport(std::string_view s) {
  auto l = lower(s);
  if (l == "tcp") return Transport::Tcp;
  if (l == "tls") return Transport::Tls;
  if (l == "udp") return Transport::Udp;
  return std::nullopt;
}

std::string StaticRoute::describe() const {
  std::string host = nextHop.find(':') != std::string::npos ? "[" + nextHop + "]" : nextHop;
  return host + ":" + std::to_string(port) + ";" + std::string(nameOf(transport)) + " priority " +
         std::to_string(priority) + " weight " + std::to_string(weight);
}

namespace {

std::vector<std::string> splitLabels(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto dot = s.find('.', start);
    out.emplace_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// Top-level domains that give away a domain written forwards
// ("example.com" instead of ".com.example.*"), the commonest slip.
// Public TLDs an administrator is likely to type.
bool isCommonTld(const std::string& l) {
  static const std::array<const char*, 18> kTlds = {"com", "net", "org", "edu", "gov", "mil", "int", "info", "biz",
                                                    "io",  "co",  "jp",  "uk",  "de",  "fr",  "cn",  "us",   "eu"};
  return std::any_of(kTlds.begin(), kTlds.end(), [&](const char* t) { return l == t; });
}

// Private suffixes used for AD domains, and the RFC 2606 names.
bool isPrivateTld(const std::string& l) {
  static const std::array<const char*, 7> kTlds = {"local", "lan", "corp", "internal", "example", "test", "invalid"};
  return std::any_of(kTlds.begin(), kTlds.end(), [&](const char* t) { return l == t; });
}

bool looksLikeTld(const std::string& l) { return isCommonTld(l) || isPrivateTld(l); }

// "example.com" rather than ".com.example": a TLD last and none first, or a
// public TLD last and a private one first ("example.com", not "corp.example").
bool looksForwards(const std::string& front, const std::string& back) {
  return (looksLikeTld(back) && !looksLikeTld(front)) || (isCommonTld(back) && isPrivateTld(front));
}

std::string normaliseDomainPattern(const std::string& in, std::string* out) {
  const std::string q = "destination pattern '" + in + "'";
  const std::string form = " (write the domain reversed, e.g. '.com.example.*' for example.com, RT-2)";
  if (in.empty()) return "destination pattern is empty" + form;
  if (in.size() > 255) return q + " is longer than 255 characters";
  auto l = lower(in);
  if (l == "*" || l == ".*") {
    *out = ".*";
    return "";
  }
  bool leadingDot = l.front() == '.';
  auto labels = splitLabels(leadingDot ? std::string_view(l).substr(1) : std::string_view(l));
  bool wildcard = false;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& label = labels[i];
    if (label.empty()) return q + " has an empty label" + form;
    if (label == "*") {
      if (i + 1 != labels.size()) return q + ": '*' is allowed only as the last label" + form;
      wildcard = true;
      continue;
    }
    if (label.find('*') != std::string::npos) return q + ": '*' must be a whole label" + form;
    if (label.size() > 63) return q + " has a label longer than 63 characters";
    for (unsigned char c : label)
      if (!std::isalnum(c) && c != '-') return q + " may hold only letters, digits, '-', '.' and a final '*'" + form;
    if (label.front() == '-' || label.back() == '-') return q + ": a label may not start or end with '-'";
  }
  if (wildcard) labels.pop_back();
  if (labels.size() >= 2 && looksForwards(labels.front(), labels.back())) {
    std::string reversed;
    for (auto it = labels.rbegin(); it != labels.rend(); ++it) reversed += "." + *it;
    return q + " looks like a domain written forwards; write it reversed: '" + reversed + ".*' (RT-2)";
  }
  std::string canon;
  for (const auto& label : labels) canon += "." + label;
  if (wildcard) canon += ".*";
  *out = canon;
  return "";
}

bool userChar(unsigned char c) {
  // RFC 3261 user: unreserved / escaped / user-unreserved ('*' handled apart).
  static const std::string_view kExtra = "-_.!~'()%&=+$,;?/";
  return std::isalnum(c) || kExtra.find(static_cast<char>(c)) != std::string_view::npos;
}

std::string normaliseUserPattern(const std::string& in, std::string* out) {
  const std::string q = "user route pattern '" + in + "'";
  if (in.empty()) return "destination pattern is empty";
  if (in.size() > 255) return q + " is longer than 255 characters";
  if (in.front() == '.')
    return q + " cannot start with '.'; a reversed domain pattern needs --route-type domain (RT-2)";
  for (std::size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '*') {
      if (i + 1 != in.size()) return q + ": '*' is allowed only at the end (a prefix match such as '+1408*')";
      continue;
    }
    if (c == '@') return q + " must be the user part only, without '@'";
    if (!userChar(c)) return q + " holds a character not allowed in a SIP user part";
  }
  *out = lower(in);
  return "";
}

}  // namespace

std::string normaliseRoutePattern(RouteType t, const std::string& in, std::string* out) {
  return t == RouteType::Domain ? normaliseDomainPattern(in, out) : normaliseUserPattern(in, out);
}

std::string normaliseNextHop(const std::string& in, std::string* out) {
  if (in.empty()) return "next hop is empty";
  if (auto ip = canonicalIp(in)) {
    *out = *ip;
    return "";
  }
  if (in.find(':') != std::string::npos || in.front() == '[') return "next hop '" + in + "' is not a valid IPv6 address";
  auto l = lower(in);
  if (auto e = checkDnsName(l, 2, "next hop"); !e.empty()) return e + " (a next hop is an IP address or an FQDN)";
  *out = l;
  return "";
}

std::string checkPriority(std::int64_t v) {
  if (v < 1 || v > 65535) return "priority " + std::to_string(v) + " is out of range 1..65535 (1 = primary)";
  return "";
}

std::string checkWeight(std::int64_t v) {
  if (v < 1 || v > 65535) return "weight " + std::to_string(v) + " is out of range 1..65535";
  return "";
}

std::string checkRouteConflict(const std::vector<StaticRoute>& existing, const StaticRoute& r) {
  for (const auto& e : existing) {
    if (e.type != r.type || e.pattern != r.pattern) continue;
    if (e.nextHop == r.nextHop && e.port == r.port && e.transport == r.transport) {
      return "a " + std::string(nameOf(e.type)) + " route for pattern '" + e.pattern + "' to " + e.describe() +
             " already exists (id " + std::to_string(e.id) + ")";
    }
  }
  for (const auto& e : existing) {
    if (e.type != r.type || e.pattern != r.pattern || e.priority != r.priority) continue;
    return "pattern '" + e.pattern + "' already has a route with priority " + std::to_string(e.priority) + " (id " +
           std::to_string(e.id) + ", to " + e.describe() +
           "); give a backup route a larger priority (RT-3: the smaller value is tried first)";
  }
  return "";
}

RouteTable::RouteTable(std::vector<StaticRoute> routes) {
  std::map<std::pair<RouteType, std::string>, bool> seen;
  for (auto& r : routes) {
    std::string canon;
    if (!normaliseRoutePattern(r.type, r.pattern, &canon).empty() || canon != r.pattern) continue;
    routes_.push_back(r);
    if (seen.emplace(std::make_pair(r.type, r.pattern), true).second) {
      Compiled c{r.type, r.pattern, {}, false};
      if (r.type == RouteType::Domain) {
        auto labels = splitLabels(std::string_view(r.pattern).substr(1));
        if (!labels.empty() && labels.back() == "*") {
          c.wildcard = true;
          labels.pop_back();
        }
        c.labels = labels;
      } else {
        std::string p = r.pattern;
        if (!p.empty() && p.back() == '*') {
          c.wildcard = true;
          p.pop_back();
        }
        c.labels = {p};
      }
      patterns_.push_back(std::move(c));
    }
  }
}

namespace {

struct Target {
  std::string user;  // lower-case, unescaped; "" if none
  std::string host;  // lower-case, no brackets or trailing dot
};

std::optional<Target> parseTarget(std::string_view t) {
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  Target out;
  auto l = lower(t.substr(0, 5));
  if (l.rfind("sip:", 0) == 0 || l.rfind("sips:", 0) == 0) {
    auto u = sip::parseUri(t);
    if (!u || !u->isSip()) return std::nullopt;
    auto user = sip::unescape(u->user);
    if (!user) return std::nullopt;
    out.user = lower(*user);
    out.host = lower(u->host);
  } else {
    auto at = t.rfind('@');
    if (at != std::string_view::npos) {
      out.user = lower(t.substr(0, at));
      t.remove_prefix(at + 1);
    }
    out.host = lower(t);
    if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']')
      out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (!out.host.empty() && out.host.back() == '.') out.host.pop_back();
  if (out.host.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::optional<RouteMatch> RouteTable::match(std::string_view target) const {
  auto t = parseTarget(target);
  if (!t) return std::nullopt;
  const Compiled* best = nullptr;
  std::size_t bestScore = 0;
  auto consider = [&](const Compiled& c, std::size_t literal) {
    // Longest pattern wins; an exact pattern beats a wildcard as long.
    std::size_t score = literal * 2 + (c.wildcard ? 0 : 1);
    if (!best || score > bestScore) {
      best = &c;
      bestScore = score;
    }
  };
  if (!t->user.empty()) {
    for (const auto& c : patterns_) {
      if (c.type != RouteType::User) continue;
      const auto& p = c.labels.front();
      bool hit = c.wildcard ? t->user.compare(0, p.size(), p) == 0 : t->user == p;
      if (hit) consider(c, p.size());
    }
  }
  if (!best) {
    auto hostLabels = splitLabels(t->host);
    std::reverse(hostLabels.begin(), hostLabels.end());
    for (const auto& c : patterns_) {
      if (c.type != RouteType::Domain) continue;
      if (c.labels.size() > hostLabels.size()) continue;
      if (!c.wildcard && c.labels.size() != hostLabels.size()) continue;
      if (!std::equal(c.labels.begin(), c.labels.end(), hostLabels.begin())) continue;
      consider(c, c.labels.size());
    }
  }
  if (!best) return std::nullopt;
  RouteMatch m{best->pattern, best->type, {}};
  for (const auto& r : routes_)
    if (r.type == best->type && r.pattern == best->pattern) m.routes.push_back(r);
  std::sort(m.routes.begin(), m.routes.end(), [](const StaticRoute& a, const StaticRoute& b) {
    return std::make_tuple(a.priority, -a.weight, a.id) < std::make_tuple(b.priority, -b.weight, b.id);
  });
  return m;
}

std::vector<StaticRoute> RouteTable::lookup(std::string_view target) const {
  auto m = match(target);
  return m ? m->routes : std::vector<StaticRoute>{};
}

}  // namespace imp::sip_proxy
