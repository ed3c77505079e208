// StatefulForwarder, the last stage of the Proxy's chain (proxy_impl.h):
// Record-Route, Via, one client transaction per attempt, failover, timer C
// and CANCEL (RFC 3261 §16.6-16.10).
#include <spdlog/spdlog.h>

#include "proxy_impl.h"

namespace imp::sip_proxy {

namespace {
// RFC 3261 §18.1.1: requests larger than this (MTU unknown: 1500 - 200)
// leave over TCP rather than UDP; our Via adds about kViaAllowance bytes.
constexpr std::size_t kMaxUdpRequest = 1300;
constexpr std::size_t kViaAllowance = 100;
}  // namespace

using detail::Hop;

Verdict StatefulForwarder::process(const CtxPtr& ctx) {
  auto to = ctx->request.to();
  if (detail::isDialogCreating(ctx->request.method()) && (!to || to->tag().empty()))
    ctx->fwd.prependHeader(sip::HeaderId::RecordRoute, p_.recordRoute(ctx->source.local.transport));
  active_[ctx->serverTx] = ctx;
  ++p_.forwarded_;
  tryNext(ctx);
  return Verdict::Wait;
}

void StatefulForwarder::tryNext(const CtxPtr& ctx) {
  if (ctx->done) return;
  if (ctx->cancelled) {
    finish(ctx, 487, "Request Terminated");
    return;
  }
  if (ctx->next >= ctx->hops.size()) {
    if (ctx->lastWasTimeout)
      finish(ctx, 408, "Request Timeout - no next hop answered");
    else
      finish(ctx, 503, "Service Unavailable - no next hop reachable");
    return;
  }
  if (ctx->next > 0) ++p_.failovers_;
  Hop h = ctx->hops[ctx->next++];
  p_.resolve(h, [ctx, h](Proxy::Impl& self, std::optional<sip::Endpoint> ep) {
    if (ctx->done) return;
    if (!ep) {
      ctx->lastWasTimeout = false;
      self.forwarder_.tryNext(ctx);
      return;
    }
    self.forwarder_.sendHop(ctx, h, *ep);
  });
}

void StatefulForwarder::sendHop(const CtxPtr& ctx, const Hop& hop, const sip::Endpoint& hopEp, bool udpRetry) {
  sip::Message m = ctx->fwd;
  // RFC 3261 §18.1.1: a request within 200 bytes of the path MTU (1300
  // bytes when it is unknown) does not go over UDP but over TCP to the
  // same address; if the next hop refuses TCP it gets the datagram after all.
  sip::Endpoint ep = hopEp;
  bool largeOverTcp = false;
  if (ep.transport == sip::Transport::Udp && !udpRetry && m.serialize().size() + kViaAllowance > kMaxUdpRequest) {
    ep.transport = sip::Transport::Tcp;
    largeOverTcp = true;
  }
  // RFC 5658 double Record-Route: the request leaves over another transport
  // than it came in on, so the callee's side gets a Record-Route of its own
  // (on top), the caller's side keeps the one added in process().
  auto inbound = ctx->source.local.transport;
  auto to = ctx->request.to();
  if (ep.transport != inbound && detail::isDialogCreating(ctx->request.method()) && (!to || to->tag().empty()) &&
      p_.hasListener(ep.transport))
    m.prependHeader(sip::HeaderId::RecordRoute, p_.recordRoute(ep.transport));
  std::string via = p_.viaFor(ep.transport);
  if (ctx->federation) via += federationViaParam(p_.cfg_.nodeId);
  m.prependHeader(sip::HeaderId::Via, via);
  std::uint64_t attempt = ++ctx->attempt;
  ctx->currentHop = hop;
  ctx->currentEp = ep;
  // Kept for the CANCEL of this branch, which only an INVITE can get.
  if (ctx->request.method() == "INVITE") ctx->current = m;
  ctx->gotProvisional = false;
  const auto& log = p_.log_;
  if (p_.trace("routing")) log->info("Routing: {} {} to {}", m.method(), m.requestUri(), ep.toString());
  if (p_.trace("sip-message-state"))
    log->info("State: transaction {}: attempt {} to {} (client transaction calling)", ctx->serverTx, attempt,
              ep.toString());
  sip::ClientCallbacks cb;
  cb.onProvisional = [this, ctx, attempt](const sip::Message& r) {
    if (ctx->done || ctx->attempt != attempt) return;
    ctx->gotProvisional = true;
    p_.timers_.cancel(ctx->hopTimer);
    if (ctx->request.method() == "INVITE" && !ctx->cancelSent) armTimerC(ctx, attempt);
    if (ctx->cancelled && !ctx->cancelSent) cancelBranch(ctx);
    if (r.statusCode() > 100) relay(ctx, r, false);
  };
  cb.onFinal = [this, ctx, attempt](const sip::Message& r) {
    if (ctx->done || ctx->attempt != attempt) return;
    p_.timers_.cancel(ctx->hopTimer);
    if (r.statusCode() == 503) {
      hopFailed(ctx, "answered 503", false);
      return;
    }
    relay(ctx, r, true);
  };
  cb.onTimeout = [this, ctx, attempt] {
    if (ctx->done || ctx->attempt != attempt) return;
    hopFailed(ctx, "timed out", true);
  };
  cb.onTransportError = [this, ctx, attempt, hop, hopEp, largeOverTcp](const sip::TransportError& e) {
    if (ctx->done || ctx->attempt != attempt) return;
    p_.timers_.cancel(ctx->hopTimer);
    if (largeOverTcp &&
        (e.kind == sip::TransportErrorKind::ConnectionRefused || e.kind == sip::TransportErrorKind::ConnectTimeout)) {
      if (p_.log_)
        p_.log_->info("{} {}: {} does not take TCP ({}); sending the {}-byte request over UDP", ctx->request.method(),
                      ctx->request.requestUri(), hopEp.toString(), sip::errorKindName(e.kind),
                      ctx->fwd.serialize().size());
      sendHop(ctx, hop, hopEp, true);
      return;
    }
    hopFailed(ctx, std::string(sip::errorKindName(e.kind)) + (e.detail.empty() ? "" : ": " + e.detail), false);
  };
  ctx->hopTimer = p_.timers_.schedule(p_.cfg_.hopTimeout, [this, ctx, attempt] {
    if (ctx->done || ctx->attempt != attempt || ctx->gotProvisional) return;
    hopFailed(ctx, "no answer within " + std::to_string(p_.cfg_.hopTimeout.count()) + " ms", true);
  });
  ctx->clientTx = p_.txl_->sendRequest(std::move(m), ep, std::move(cb));
}

// Timer C (RFC 3261 16.6 item 11, 16.7 item 2): reset by every provisional.
void StatefulForwarder::armTimerC(const CtxPtr& ctx, std::uint64_t attempt) {
  p_.timers_.cancel(ctx->timerC);
  ctx->timerC = p_.timers_.schedule(p_.cfg_.timerC, [this, ctx, attempt] {
    ctx->timerC = 0;
    if (ctx->done || ctx->attempt != attempt) return;
    if (p_.log_)
      p_.log_->warn("timer C: {} {} to {} has had no final answer for {} s; cancelling the branch",
                    ctx->request.method(), ctx->request.requestUri(), ctx->currentEp.toString(),
                    std::chrono::duration_cast<std::chrono::seconds>(p_.cfg_.timerC).count());
    cancelBranch(ctx);
  });
}

// CANCELs the current branch; a branch that still gives no final answer
// within cancelGuard is abandoned and the client gets 408 (or 487 when it
// cancelled itself).
void StatefulForwarder::cancelBranch(const CtxPtr& ctx) {
  sendCancel(ctx);
  p_.timers_.cancel(ctx->timerC);
  std::uint64_t attempt = ctx->attempt;
  ctx->timerC = p_.timers_.schedule(p_.cfg_.cancelGuard, [this, ctx, attempt] {
    ctx->timerC = 0;
    if (ctx->done || ctx->attempt != attempt) return;
    if (p_.log_)
      p_.log_->warn("{} {}: no final answer after CANCEL to {}; giving up on the branch", ctx->request.method(),
                    ctx->request.requestUri(), ctx->currentEp.toString());
    ++ctx->attempt;
    p_.txl_->terminateClient(ctx->clientTx);
    if (ctx->cancelled)
      finish(ctx, 487, "Request Terminated");
    else
      finish(ctx, 408, "Request Timeout");
  });
}

void StatefulForwarder::hopFailed(const CtxPtr& ctx, const std::string& why, bool timeout) {
  ++ctx->attempt;  // callbacks of the failed attempt are stale from now on
  ctx->lastWasTimeout = timeout;
  p_.health_.markDown(ctx->currentHop, ctx->currentEp);
  if (p_.log_)
    p_.log_->warn("next hop {} for {} {} failed ({}){}", ctx->currentEp.toString(), ctx->request.method(),
                  ctx->request.requestUri(), why, ctx->next < ctx->hops.size() ? ": trying the next one" : "");
  tryNext(ctx);
}

void StatefulForwarder::relay(const CtxPtr& ctx, const sip::Message& r, bool final) {
  if (final) p_.timers_.cancel(ctx->timerC);
  if (p_.trace("sip-message-state"))
    p_.log_->info("State: transaction {}: {} {} from {} relayed{}", ctx->serverTx, r.statusCode(), r.reason(),
                  ctx->currentEp.toString(), final ? " (server transaction completed)" : " (proceeding)");
  sip::Message up = r;
  up.removeFirstValue(sip::HeaderId::Via);
  if (final) {
    ctx->done = true;
    active_.erase(ctx->serverTx);
  }
  p_.txl_->respond(ctx->serverTx, std::move(up));
}

void StatefulForwarder::finish(const CtxPtr& ctx, int status, std::string_view reason) {
  p_.timers_.cancel(ctx->timerC);
  if (p_.trace("sip-message-state"))
    p_.log_->info("State: transaction {}: answered {} {} (server transaction completed)", ctx->serverTx, status,
                  reason);
  ctx->done = true;
  p_.timers_.cancel(ctx->hopTimer);
  active_.erase(ctx->serverTx);
  p_.answer(ctx->serverTx, ctx->request, status, reason);
}

// CANCEL (§16.10): answered hop by hop, then sent down the current branch.
void StatefulForwarder::onCancel(TxId tx, const sip::Message& cancel) {
  auto invite = p_.txl_->inviteFor(cancel);
  auto it = invite ? active_.find(*invite) : active_.end();
  if (it == active_.end()) {
    p_.answer(tx, cancel, 481, "Call/Transaction Does Not Exist");
    return;
  }
  p_.answer(tx, cancel, 200, "OK");
  auto ctx = it->second;
  ctx->cancelled = true;
  if (ctx->gotProvisional && !ctx->cancelSent) cancelBranch(ctx);
}

void StatefulForwarder::sendCancel(const CtxPtr& ctx) {
  if (!ctx->current) return;
  ctx->cancelSent = true;
  const sip::Message& inv = *ctx->current;
  auto c = sip::Message::request("CANCEL", inv.requestUri());
  if (auto v = inv.topVia()) c.appendHeader("Via", v->raw);
  c.appendHeader("Max-Forwards", "70");
  for (const auto& h : inv.headers())
    if (h.id == sip::HeaderId::From || h.id == sip::HeaderId::To || h.id == sip::HeaderId::CallId ||
        h.id == sip::HeaderId::Route)
      c.appendHeader(sip::canonicalName(h.id), h.value);
  if (auto cs = inv.cseq()) c.appendHeader("CSeq", std::to_string(cs->seq) + " CANCEL");
  p_.txl_->sendRequest(std::move(c), ctx->currentEp, {});
}

// A response (ours or relayed) that could not be written back to the
// client: its connection is gone or its address unreachable. Logged and
// counted, so no answer disappears silently.
void StatefulForwarder::onServerTransportError(TxId tx, const sip::TransportError& e) {
  ++p_.responsesUnsent_;
  if (!p_.log_) return;
  auto it = active_.find(tx);
  if (it != active_.end())
    p_.log_->warn("response to {} {} from {} not delivered: {}: {}", it->second->request.method(),
                  it->second->request.requestUri(), it->second->source.remote.toString(), sip::errorKindName(e.kind),
                  e.detail);
  else
    p_.log_->warn("response for server transaction {} not delivered: {}: {}", tx, sip::errorKindName(e.kind),
                  e.detail);
}

void StatefulForwarder::shutdown() {
  for (const auto& [tx, ctx] : active_) {
    ctx->done = true;
    p_.timers_.cancel(ctx->hopTimer);
    p_.timers_.cancel(ctx->timerC);
  }
  active_.clear();
}

void StatefulForwarder::onServerTerminated(TxId tx) {
  auto it = active_.find(tx);
  if (it == active_.end()) return;
  it->second->done = true;  // nobody to answer any more
  p_.timers_.cancel(it->second->hopTimer);
  p_.timers_.cancel(it->second->timerC);
  active_.erase(it);
}

}  // namespace imp::sip_proxy
