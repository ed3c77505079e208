#pragma once
// XMPP addresses (RFC 7622). A Jid holds the three parts already prepared
// and enforced:
//   localpart    PRECIS IdentifierClass, UsernameCaseMapped profile
//                (RFC 8265 §3.3: width mapping, toLowerCase, NFC, bidi
//                rule) minus " & ' / : < > @ (RFC 7622 §3.3.1);
//   domainpart   IDNA2008/UTS #46 mapping and checks (lower case, NFC,
//                U-label form), a trailing dot dropped, IP literals
//                ("[v6]" and dotted IPv4) kept, labels of 1..63 octets
//                (RFC 7622 §3.2);
//   resourcepart PRECIS FreeformClass, OpaqueString profile (RFC 8265 §4.2:
//                non-ASCII spaces to U+0020, NFC, no controls) (§3.4).
// Each part is 1..1023 octets of UTF-8 after preparation. So two Jids
// compare equal exactly when RFC 7622 says the addresses are the same.
//
// Threads: Jid is a value; parse() and the normalise*() functions are
// thread-safe (ICU's normalisers and IDNA object are immutable singletons).
#include <compare>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace imp::xmpp {

class Jid {
 public:
  Jid() = default;  // empty; valid() == false

  // Parses and prepares "[local@]domain[/resource]" (RFC 7622 §3.1: the
  // resource starts at the first '/', the localpart ends at the first '@'
  // before it). nullopt on an invalid address, with a precise reason in
  // *why ("localpart: character U+0040 '@' is not allowed", ...).
  static std::optional<Jid> parse(std::string_view text, std::string* why = nullptr);
  // Builds from separate parts, each prepared as in parse(); local and
  // resource may be empty (= absent).
  static std::optional<Jid> fromParts(std::string_view local, std::string_view domain,
                                      std::string_view resource = {}, std::string* why = nullptr);

  bool valid() const { return !domain_.empty(); }
  const std::string& local() const { return local_; }
  const std::string& domain() const { return domain_; }
  const std::string& resource() const { return resource_; }
  bool hasLocal() const { return !local_.empty(); }
  bool hasResource() const { return !resource_.empty(); }
  bool isBare() const { return resource_.empty(); }

  // local@domain (or domain): the bare JID.
  Jid bare() const;
  std::string bareString() const;
  // local@domain/resource: the whole address as text.
  std::string full() const;
  std::string str() const { return full(); }
  // This address with another resource, prepared as in parse(); nullopt
  // with *why when the resource is invalid. An empty resource gives bare().
  std::optional<Jid> withResource(std::string_view resource, std::string* why = nullptr) const;

  bool operator==(const Jid&) const = default;
  std::strong_ordering operator<=>(const Jid&) const = default;

 private:
  std::string local_;
  std::string domain_;
  std::string resource_;
};

// The preparation of one part, for callers that hold the parts apart (the
// directory's user id lookup uses normaliseLocalpart()). nullopt with the
// reason on an invalid part; the empty string is invalid.
std::optional<std::string> normaliseLocalpart(std::string_view local, std::string* why = nullptr);
std::optional<std::string> normaliseDomainpart(std::string_view domain, std::string* why = nullptr);
std::optional<std::string> normaliseResourcepart(std::string_view resource, std::string* why = nullptr);

inline constexpr std::size_t kMaxJidPartOctets = 1023;  // RFC 7622 §3.1

}  // namespace imp::xmpp

template <>
struct std::hash<imp::xmpp::Jid> {
  std::size_t operator()(const imp::xmpp::Jid& j) const noexcept;
};
