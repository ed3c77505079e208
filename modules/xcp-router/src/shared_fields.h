#pragma once
// JSON fields that several xcp-router answers carry (the user, a JID),
// declared once for the module's response shapes to take with same()
// (issue 15 deliverable 4: a field name is written in one place).
#include <string>

#include <imp/core/response_shape.h>

namespace imp::xcp::detail {

struct SharedFields : core::Shape {
  SharedFields() : Shape("XcpSharedFields", Layout::Lines) {}
  const core::Field<std::string> userid = text("userid").describe("the user's id in the directory");
  const core::Field<std::string> jid = text("jid").describe("an XMPP address (RFC 7622)");
};

inline const SharedFields& sharedFields() {
  static const SharedFields s;
  return s;
}

}  // namespace imp::xcp::detail
