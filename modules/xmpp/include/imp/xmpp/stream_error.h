#pragma once
// Stream error conditions (RFC 6120 §4.9.3). A stream error is
// unrecoverable: the entity that detects it sends <stream:error/> and closes
// the stream (§4.9.1.1). The names are the element names of §4.9.3.
#include <cstdint>
#include <optional>
#include <string_view>

namespace imp::xmpp {

enum class StreamErrorCondition : std::uint8_t {
  BadFormat,               // §4.9.3.1
  BadNamespacePrefix,      // §4.9.3.2
  Conflict,                // §4.9.3.3
  ConnectionTimeout,       // §4.9.3.4
  HostGone,                // §4.9.3.5
  HostUnknown,             // §4.9.3.6
  ImproperAddressing,      // §4.9.3.7
  InternalServerError,     // §4.9.3.8
  InvalidFrom,             // §4.9.3.9
  InvalidNamespace,        // §4.9.3.10
  InvalidXml,              // §4.9.3.11
  NotAuthorized,           // §4.9.3.12
  NotWellFormed,           // §4.9.3.13
  PolicyViolation,         // §4.9.3.14
  RemoteConnectionFailed,  // §4.9.3.15
  Reset,                   // §4.9.3.16
  ResourceConstraint,      // §4.9.3.17
  RestrictedXml,           // §4.9.3.18
  SeeOtherHost,            // §4.9.3.19: the text is the new host[:port]
  SystemShutdown,          // §4.9.3.20
  UndefinedCondition,      // §4.9.3.21
  UnsupportedEncoding,     // §4.9.3.22
  UnsupportedFeature,      // §4.9.3.23
  UnsupportedStanzaType,   // §4.9.3.24
  UnsupportedVersion,      // §4.9.3.25
};

inline constexpr std::size_t kStreamErrorConditionCount = 25;

// "bad-format", "not-well-formed", ... (the element name).
std::string_view streamErrorName(StreamErrorCondition c);
// The inverse of streamErrorName(); nullopt for an unknown name.
std::optional<StreamErrorCondition> streamErrorFromName(std::string_view name);

}  // namespace imp::xmpp
