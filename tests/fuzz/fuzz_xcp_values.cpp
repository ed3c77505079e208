// libFuzzer target: the value parsers of modules/xcp-router — the XEP-0191
// match forms of a JID, the mechanism names of stored SCRAM credentials
// (their base64 and SASLprep are modules/xmpp's, fuzzed by fuzz_sasl),
// subscription names, and the state machine, which must keep every result
// inside the nine states of RFC 6121 Appendix A.1.
#include <imp/xcp_router/credential_store.h>
#include <imp/xcp_router/privacy_store.h>
#include <imp/xcp_router/subscription.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace imp::xcp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  if (imp::xmpp::ScramHash h{}; parseMechanism(in, h) && mechanismName(h) != in) std::abort();
  auto forms = blockMatchForms(in);
  if (forms.empty() || forms.front() != in) std::abort();
  Subscription s;
  (void)parseSubscription(in, s);
  if (size >= 2) {
    SubscriptionState st;
    st.subscription = static_cast<Subscription>(data[0] & 3);
    st.pendingOut = data[0] & 4;
    st.pendingIn = data[0] & 8;
    st.preApproved = data[0] & 16;
    for (std::size_t i = 1; i < size; ++i) {
      st = applySubscriptionEvent(st, static_cast<SubscriptionEvent>(data[i] & 7)).state;
      if ((st.pendingOut && st.hasTo()) || (st.pendingIn && st.hasFrom())) std::abort();
    }
  }
  return 0;
}
