// A relay loop for instruction counts (issue 15, deliverable 2): N MESSAGEs
// (IMP_RELAY_N, default 2000) from a UAC through the proxy over loopback TCP
// to a UAS that answers 200, one after the other. Under
//   valgrind --tool=callgrind --separate-threads=yes sip_proxy_relay_loop_tests
// the proxy thread's file gives the proxy's cost per relayed MESSAGE.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "ladder.h"

using namespace imp::sip_proxy::testing;

TEST_CASE("a relay loop: every MESSAGE goes through to the UAS and its 200 comes back") {
  std::size_t n = 2000;
  if (const char* e = std::getenv("IMP_RELAY_N")) n = std::strtoul(e, nullptr, 10);
  REQUIRE(n > 0);
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);
  rig.flags->replace({});  // no trace lines: the hot path as in production

  for (std::size_t i = 0; i < n; ++i) {
    auto id = "relay" + std::to_string(i);
    uac.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, id), rig.ep);
    CHECK(uac.expect(200).msg.callId() == id);
  }
  CHECK(uas.requests().size() == n);
  auto st = rig.proxy->stats();
  CHECK(st.requests == n);
  CHECK(st.forwarded == n);
}
