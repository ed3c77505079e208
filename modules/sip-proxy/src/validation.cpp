// Validation, the second stage of the Proxy's chain (proxy_impl.h):
// RFC 3261 §16.3 request checks and Max-Forwards.
#include "proxy_impl.h"

namespace imp::sip_proxy {

Verdict Validation::process(const CtxPtr& ctx) {
  const sip::Message& req = ctx->request;
  // RFC 3261 §16.3 steps 1-2: a request the proxy cannot forward as it is
  // gets 400 naming the header, or 416 for the scheme, before routing.
  if (auto bad = checkRequestSyntax(req)) {
    p_.reject(ctx, *bad);
    return Verdict::Stop;
  }
  auto mf = req.maxForwards();
  if (mf && *mf <= 0) {
    p_.answer(ctx->serverTx, req, 483, "Too Many Hops");
    return Verdict::Stop;
  }
  if (auto bad = checkProxyRequire(req)) {  // step 5
    p_.reject(ctx, *bad);
    return Verdict::Stop;
  }
  ctx->fwd = req;
  Proxy::Impl::markReceived(ctx->fwd, ctx->source);
  ctx->fwd.setHeader(sip::HeaderId::MaxForwards, mf ? std::to_string(*mf - 1) : "70");
  return Verdict::Continue;
}

}  // namespace imp::sip_proxy
