#pragma once
// SASL for XMPP client streams, server side (RFC 6120 §6): SCRAM-SHA-1 and
// SCRAM-SHA-256 (RFC 5802, RFC 7677), their -PLUS variants with channel
// binding (tls-exporter, RFC 9266; tls-server-end-point, RFC 5929), and PLAIN
// (RFC 4616) over TLS only.
//
// Only salted keys are stored (ScramCredential); PLAIN is checked by deriving
// the SCRAM-SHA-256 keys from the offered password with the stored salt and
// iteration count. An unknown user goes through the same SCRAM exchange as a
// known one, with a salt and keys derived from a server secret and the name
// (HMAC), so the peer cannot tell "no such user" from "wrong password"
// (RFC 5802 §9): same salt for the same name on every attempt, the configured
// iteration count, and the same `not-authorized` at the end.
//
// Threads: a SaslExchange is used by one thread at a time. start() calls the
// credential lookup (the database) and, for PLAIN, PBKDF2 (thousands of
// HMACs): run it on a worker, never on an event loop. next() of SCRAM costs a
// handful of HMACs and may run on the loop. A SaslConfig is immutable once
// shared; a live change builds a new one, later exchanges take it.
//
// Errors: every failure carries an RFC 6120 §6.5 condition (what the peer is
// told, as <failure><condition/></failure>) and a precise `detail` for the
// log, which the caller writes with the stream id and never sends to the
// peer. SaslStats counts outcomes per condition.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace imp::xmpp {

// ---- Conditions (RFC 6120 §6.5) --------------------------------------------

enum class SaslCondition : std::uint8_t {
  Aborted,               // §6.5.1: the client sent <abort/>
  AccountDisabled,       // §6.5.2
  CredentialsExpired,    // §6.5.3
  EncryptionRequired,    // §6.5.4: PLAIN without TLS
  IncorrectEncoding,     // §6.5.5: the element's base64 is invalid
  InvalidAuthzid,        // §6.5.6: authzid other than the user's bare JID
  InvalidMechanism,      // §6.5.7: not offered on this stream
  MalformedRequest,      // §6.5.8: SCRAM/PLAIN message syntax, state
  MechanismTooWeak,      // §6.5.9: SCRAM-SHA-1 when policy refuses it
  NotAuthorized,         // §6.5.10: wrong proof, password, binding; unknown user
  TemporaryAuthFailure,  // §6.5.11: the credential lookup failed (database)
};
inline constexpr std::size_t kSaslConditionCount = 11;
// The element name: "not-authorized", "malformed-request", ...
std::string_view conditionName(SaslCondition c);

struct SaslFailure {
  SaslCondition condition = SaslCondition::NotAuthorized;
  std::string detail;  // for the log only
};

// ---- base64 (RFC 4648 §4, padded, no whitespace) ----------------------------

std::string base64Encode(std::string_view bytes);
// nullopt unless `text` is canonical padded base64 (length a multiple of 4,
// alphabet only, '=' only as padding, zero pad bits).
std::optional<std::string> base64Decode(std::string_view text);
// The character data of <auth/> or <response/> (RFC 6120 §6.4.2): "" = no
// data (nullopt payload), "=" = empty response, else base64; bad base64 is
// `incorrect-encoding`.
std::variant<std::optional<std::string>, SaslFailure> decodeSaslPayload(std::string_view text);

// ---- Password preparation ---------------------------------------------------

// SASLprep (RFC 4013 profile of stringprep, through ICU): maps non-ASCII
// spaces to U+0020 and "commonly mapped to nothing" characters away, NFKC,
// refuses prohibited and unassigned code points and bad bidi, invalid UTF-8.
// This is the rule RFC 5802 §2.2 gives for SCRAM and what deployed clients
// apply; RFC 8265 OpaqueString agrees for every password that is NFKC-stable.
std::optional<std::string> saslPrep(std::string_view utf8);

// ---- Credentials ------------------------------------------------------------

enum class ScramHash : std::uint8_t { Sha1, Sha256 };
std::string_view hashName(ScramHash h);  // "SHA-1", "SHA-256"
std::size_t hashSize(ScramHash h);       // 20, 32

inline constexpr std::uint32_t kScramMinIterations = 4096;  // RFC 7677 §4
inline constexpr std::uint32_t kScramMaxIterations = 10'000'000;
inline constexpr std::size_t kScramSaltBytes = 16;

// What the database holds for a user and a hash: never the password.
struct ScramCredential {
  ScramHash hash = ScramHash::Sha256;
  std::string salt;          // raw bytes
  std::uint32_t iterations = 0;
  std::string storedKey;     // H(HMAC(SaltedPassword, "Client Key")), raw
  std::string serverKey;     // HMAC(SaltedPassword, "Server Key"), raw
  bool operator==(const ScramCredential&) const = default;
};

// Throws std::invalid_argument naming the problem when `iterations` is
// outside [kScramMinIterations, kScramMaxIterations].
void checkScramIterations(std::uint32_t iterations);

// PBKDF2 over the SASLprep'd password with a fresh random salt of
// kScramSaltBytes from the CSPRNG. Throws std::invalid_argument for an
// iteration count out of range or a password SASLprep refuses.
ScramCredential deriveScramCredential(ScramHash hash, std::string_view password, std::uint32_t iterations);
// The same with a given salt (tests with RFC vectors, imports). A salt
// shorter than kScramSaltBytes is accepted here: old stores have them.
ScramCredential deriveScramCredential(ScramHash hash, std::string_view password, std::uint32_t iterations,
                                      std::string_view salt);

// ---- Channel binding --------------------------------------------------------

enum class ChannelBindingType : std::uint8_t { TlsExporter, TlsServerEndPoint };
std::string_view channelBindingName(ChannelBindingType t);  // "tls-exporter", "tls-server-end-point"

struct ChannelBindingTypes {
  bool tlsExporter = false;
  bool tlsServerEndPoint = false;
  bool any() const { return tlsExporter || tlsServerEndPoint; }
};

// The binding data of this stream's TLS session, as the TLS layer computed
// it: tls-exporter = 32 bytes of the exporter with label
// "EXPORTER-Channel-Binding" and no context (RFC 9266 §2, only where the
// session is TLS 1.3 or has the extended master secret); tls-server-end-point
// = the hash of the server certificate (RFC 5929 §4.1). An absent type is not
// offered.
struct ChannelBindings {
  std::optional<std::string> tlsExporter;
  std::optional<std::string> tlsServerEndPoint;
  ChannelBindingTypes types() const { return {tlsExporter.has_value(), tlsServerEndPoint.has_value()}; }
  const std::optional<std::string>& data(ChannelBindingType t) const {
    return t == ChannelBindingType::TlsExporter ? tlsExporter : tlsServerEndPoint;
  }
};

// The <mechanisms/> to advertise, strongest first: the -PLUS variants only
// when a binding type is available, SCRAM-SHA-1(-PLUS) only when allowed,
// PLAIN only when `tls` is true — the caller advertises PLAIN on encrypted
// streams only, and SaslExchange::create refuses it otherwise.
std::vector<std::string> mechanisms(bool tls, ChannelBindingTypes bindings, bool allowSha1 = true);

// ---- Server configuration ---------------------------------------------------

struct SaslStats {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> unknownUser{0};  // exchanges run on a fake credential
  std::array<std::atomic<std::uint64_t>, kSaslConditionCount> failed{};
  std::uint64_t failures(SaslCondition c) const { return failed[static_cast<std::size_t>(c)].load(); }
};

struct SaslConfig {
  std::string domain;                // the service's domain: authzid must be user@domain
  std::uint32_t iterations = kScramMinIterations;  // unknown users' fake credentials
  std::string fakeCredentialSecret;  // >= 16 bytes, the same on every node of the cluster
  bool allowSha1 = true;             // false: SCRAM-SHA-1(-PLUS) is mechanism-too-weak
  // Server nonce part; empty = 24 bytes from the CSPRNG, base64. Test seam
  // for the RFC vectors; must return printable ASCII without ','.
  std::function<std::string()> nonceSource;
  std::shared_ptr<SaslStats> stats;  // may be null
};
// Throws std::invalid_argument with `in [xmpp]`-ready wording when the
// configuration cannot be used (iterations, secret, domain).
void checkSaslConfig(const SaslConfig& config);

// The user's credential for one hash; nullopt = no such user (or a name that
// is not a valid localpart: the callback applies the RFC 7622 rules). An
// exception means the store is unavailable: `temporary-auth-failure`.
using CredentialLookup = std::function<std::optional<ScramCredential>(const std::string& user, ScramHash hash)>;

// ---- SCRAM message grammar (RFC 5802 §7), exposed for tests and fuzzing ------

struct ScramClientFirst {
  char cbindFlag = 'n';             // 'n', 'y' or 'p'
  std::string cbindName;            // with 'p'
  std::string authzid;              // decoded saslname, may be empty
  std::string gs2Header;            // verbatim, e.g. "n,," — c= must repeat it
  std::string bare;                 // client-first-message-bare, verbatim
  std::string user;                 // decoded saslname
  std::string clientNonce;
};
std::variant<ScramClientFirst, SaslFailure> parseScramClientFirst(std::string_view message);

struct ScramClientFinal {
  std::string channelBinding;       // decoded c=
  std::string nonce;                // r=
  std::string proof;                // decoded p=
  std::string withoutProof;         // client-final-message-without-proof, verbatim
};
std::variant<ScramClientFinal, SaslFailure> parseScramClientFinal(std::string_view message);

// PLAIN message (RFC 4616 §2): [authzid] NUL authcid NUL passwd.
struct PlainMessage {
  std::string authzid, authcid, password;
};
std::variant<PlainMessage, SaslFailure> parsePlainMessage(std::string_view message);

// ---- One authentication exchange --------------------------------------------

struct SaslStep {
  enum class Kind : std::uint8_t { Challenge, Success, Failure };
  Kind kind = Kind::Failure;
  std::string data;      // raw: the challenge, or the additional data of <success/>
  SaslFailure failure;   // with Kind::Failure
  bool isChallenge() const { return kind == Kind::Challenge; }
  bool isSuccess() const { return kind == Kind::Success; }
  bool isFailure() const { return kind == Kind::Failure; }
};

// What the stream knows about itself when the client picks a mechanism.
struct SaslStream {
  bool tls = false;
  ChannelBindings bindings;  // empty when not TLS or the layer has none
};

class SaslExchange {
 public:
  // The exchange for the <auth mechanism=.../> the client chose, or the
  // failure to send: invalid-mechanism (unknown, or -PLUS without binding
  // data), encryption-required (PLAIN without TLS), mechanism-too-weak
  // (SCRAM-SHA-1 when not allowed). `config` must have passed
  // checkSaslConfig.
  static std::variant<std::unique_ptr<SaslExchange>, SaslFailure> create(
      std::string_view mechanism, std::shared_ptr<const SaslConfig> config, CredentialLookup lookup,
      SaslStream stream);
  virtual ~SaslExchange() = default;

  // The initial response (nullopt when <auth/> had none: the answer is an
  // empty challenge). SCRAM: client-first -> server-first challenge.
  // PLAIN: the message -> success or not-authorized.
  virtual SaslStep start(const std::optional<std::string>& initial) = 0;
  // A <response/>. SCRAM: client-final -> success with server-final
  // ("v=...") as additional data, or failure.
  virtual SaslStep next(const std::string& response) = 0;
  // The client's <abort/>: failure `aborted`.
  SaslStep abort();

  std::string_view mechanism() const { return mechanism_; }
  bool finished() const { return finished_; }
  bool succeeded() const { return succeeded_; }
  // The user the client named (decoded) and the authzid it asked for (empty
  // or user@domain), set once the first message parsed; authenticated only
  // when succeeded().
  const std::string& user() const { return user_; }
  const std::string& authzid() const { return authzid_; }

 protected:
  SaslExchange(std::string mechanism, std::shared_ptr<const SaslConfig> config);
  SaslStep fail(SaslCondition c, std::string detail);
  SaslStep succeed(std::string user, std::string authzid, std::string data);
  SaslStep challenge(std::string data);
  SaslStep finishedAlready();
  // Empty, or user@domain (domain ASCII case-insensitive): RFC 6120 §6.3.8.
  bool authzidAllowed(const std::string& user, const std::string& authzid) const;

  std::string mechanism_;
  std::shared_ptr<const SaslConfig> config_;
  bool finished_ = false;
  bool succeeded_ = false;
  std::string user_, authzid_;
};

}  // namespace imp::xmpp
