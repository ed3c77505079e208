#pragma once
// Input the xcp-router stores refuse before touching the database, with the
// XMPP stanza error condition (RFC 6120 §8.3.3) the session manager answers
// with and a text that names the field and the limit.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace imp::xcp {

// Longest JID (in characters) the stores index: with the 128-character user
// id it fills InnoDB's 3072-byte key in utf8mb4 (sql/0007_xcp_router.sql).
inline constexpr std::size_t kMaxIndexedJidChars = 640;

class StoreInputError : public std::invalid_argument {
 public:
  StoreInputError(std::string condition, const std::string& text)
      : std::invalid_argument(text), condition_(std::move(condition)) {}
  // "not-acceptable", "bad-request", "jid-malformed"
  const std::string& condition() const { return condition_; }

 private:
  std::string condition_;
};

// Number of UTF-8 characters (code points) of a valid UTF-8 string.
std::size_t utf8Length(const std::string& s);

}  // namespace imp::xcp
