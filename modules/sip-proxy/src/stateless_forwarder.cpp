// StatelessForwarder (proxy_impl.h): responses matching no transaction go
// back along the Via; ACKs for 2xx go along their Route / Request-URI.
#include <spdlog/spdlog.h>

#include "proxy_impl.h"

namespace imp::sip_proxy {

using detail::Hop;

void StatelessForwarder::onStrayResponse(const sip::Message& msg) {
  auto vias = msg.vias();
  if (vias.size() < 2) return;
  const auto& top = vias.front();
  auto topT = detail::parseSipTransport(top.transport).value_or(sip::Transport::Tcp);
  if (!p_.isOwn(top.host, top.port, topT)) return;
  const auto& next = vias[1];
  Hop h;
  h.transport = detail::parseSipTransport(next.transport).value_or(sip::Transport::Tcp);
  h.host = std::string(next.param("received").value_or(next.host));
  h.port = next.port ? next.port : detail::defaultPort(h.transport);
  if (auto rp = next.param("rport"); rp && !rp->empty()) {
    int p = 0;
    for (char ch : *rp) p = ch >= '0' && ch <= '9' && p < 65536 ? p * 10 + (ch - '0') : 70000;
    if (p > 0 && p < 65536) h.port = static_cast<std::uint16_t>(p);
  }
  sip::Message up = msg;
  up.removeFirstValue(sip::HeaderId::Via);
  send(std::move(up), h);
}

void StatelessForwarder::onStrayAck(const sip::Message& msg) {
  sip::Message out = msg;
  auto mf = msg.maxForwards();
  if (mf && *mf <= 0) return;
  out.setHeader(sip::HeaderId::MaxForwards, mf ? std::to_string(*mf - 1) : "70");
  for (int i = 0; i < 8; ++i) {
    auto routes = out.routes();
    if (routes.empty() || !p_.isOwnUri(routes.front().uri)) break;
    out.removeFirstValue(sip::HeaderId::Route);
  }
  auto routes = out.routes();
  auto h = detail::hopFromUri(!routes.empty() ? routes.front().uri : out.requestUri());
  if (!h || (routes.empty() && p_.isOwn(h->host, h->port, h->transport))) return;
  out.prependHeader(sip::HeaderId::Via, p_.viaFor(h->transport));
  send(std::move(out), *h);
}

void StatelessForwarder::send(sip::Message m, const Hop& h) {
  auto shared = std::make_shared<sip::Message>(std::move(m));
  p_.resolve(h, [shared](Proxy::Impl& self, std::optional<sip::Endpoint> ep) {
    if (!ep) return;
    ++self.stateless_;
    self.send(*shared, *ep, [&self, ep = *ep](const sip::TransportError& e) {
      if (self.log_) self.log_->warn("stateless forward to {} failed: {}", ep.toString(), sip::errorKindName(e.kind));
    });
  });
}

}  // namespace imp::sip_proxy
