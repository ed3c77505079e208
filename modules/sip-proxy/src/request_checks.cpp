#include "imp/sip_proxy/request_checks.h"

#include <imp/sip/message.h>
#include <imp/sip/uri.h>

#include <array>

namespace imp::sip_proxy {

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) s += i + 1 == names.size() ? " and " : ", ";
    s += names[i];
  }
  return s;
}

}  // namespace

std::optional<RequestRejection> checkRequestSyntax(const sip::Message& req) {
  using sip::HeaderId;
  // §8.1.1: every request carries these (RFC 4475 §3.3.1 insuf).
  constexpr std::array kMandatory{HeaderId::Via, HeaderId::To, HeaderId::From, HeaderId::CallId, HeaderId::CSeq};
  std::vector<std::string> missing;
  for (auto id : kMandatory)
    if (req.count(id) == 0) missing.emplace_back(sip::canonicalName(id));
  if (!missing.empty())
    return RequestRejection{400, "Bad Request - missing " + joined(missing) + " header field" + (missing.size() > 1 ? "s" : ""),
                            {}};

  // §7.3.1 / §20: fields that are not lists appear at most once (RFC 4475
  // §3.3.8 multi01, §3.3.9 mcl01).
  constexpr std::array kSingle{HeaderId::To,          HeaderId::From,        HeaderId::CallId,
                               HeaderId::CSeq,        HeaderId::MaxForwards, HeaderId::ContentLength,
                               HeaderId::ContentType, HeaderId::Expires,     HeaderId::MinExpires};
  std::vector<std::string> repeated;
  for (auto id : kSingle)
    if (req.count(id) > 1) repeated.emplace_back(sip::canonicalName(id));
  if (!repeated.empty())
    return RequestRejection{400, "Bad Request - several values in single-value header field" +
                                     std::string(repeated.size() > 1 ? "s " : " ") + joined(repeated),
                            {}};

  // §16.3 step 2: a scheme the proxy cannot route is refused with 416
  // (RFC 4475 §3.3.2 unkscm, §3.3.3 novelsc).
  auto uri = sip::parseUri(req.requestUri());
  if (!uri) return RequestRejection{400, "Bad Request - malformed Request-URI", {}};
  if (!uri->isSip()) {
    std::string scheme(uri->schemeText);
    for (auto& c : scheme)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return RequestRejection{416, "Unsupported URI Scheme - " + scheme.substr(0, 64) + ": (this proxy routes sip and sips)",
                            {}};
  }
  return std::nullopt;
}

std::optional<RequestRejection> checkProxyRequire(const sip::Message& req) {
  // No proxy-required extension is implemented: every option is unsupported
  // (RFC 4475 §3.3.5 bext01). Require is for the UAS, never checked here.
  std::vector<std::string> options;
  for (const auto& h : req.headers()) {
    if (h.id != sip::HeaderId::ProxyRequire) continue;
    for (auto v : sip::splitList(h.value))
      if (!v.empty()) options.emplace_back(v);
  }
  if (options.empty()) return std::nullopt;
  std::string list;
  for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
  RequestRejection r{420, "Bad Extension - Proxy-Require " + list.substr(0, 200) + " not supported", {}};
  r.headers.emplace_back("Unsupported", list);
  return r;
}

}  // namespace imp::sip_proxy
