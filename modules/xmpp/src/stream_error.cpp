// Stream error condition names (RFC 6120 §4.9.3).
#include <imp/xmpp/stream_error.h>

#include <array>

namespace imp::xmpp {
namespace {

// In enum order.
constexpr std::array<std::string_view, kStreamErrorConditionCount> kNames = {
    "bad-format",        "bad-namespace-prefix", "conflict",
    "connection-timeout", "host-gone",           "host-unknown",
    "improper-addressing", "internal-server-error", "invalid-from",
    "invalid-namespace", "invalid-xml",          "not-authorized",
    "not-well-formed",   "policy-violation",     "remote-connection-failed",
    "reset",             "resource-constraint",  "restricted-xml",
    "see-other-host",    "system-shutdown",      "undefined-condition",
    "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type",
    "unsupported-version",
};
static_assert(static_cast<std::size_t>(StreamErrorCondition::UnsupportedVersion) + 1 == kStreamErrorConditionCount);

}  // namespace

std::string_view streamErrorName(StreamErrorCondition c) {
  auto i = static_cast<std::size_t>(c);
  return i < kNames.size() ? kNames[i] : std::string_view("undefined-condition");
}

std::optional<StreamErrorCondition> streamErrorFromName(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<StreamErrorCondition>(i);
  return std::nullopt;
}

}  // namespace imp::xmpp
