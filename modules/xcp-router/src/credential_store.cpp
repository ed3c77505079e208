#include "imp/xcp_router/credential_store.h"

#include <imp/core/admin_http.h>
#include <imp/core/database.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace imp::xcp {

using core::DbSession;

std::string_view mechanismName(ScramHash h) { return h == ScramHash::Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256"; }

bool parseMechanism(std::string_view name, ScramHash& out) {
  for (auto h : {ScramHash::Sha1, ScramHash::Sha256})
    if (name == mechanismName(h)) {
      out = h;
      return true;
    }
  return false;
}

std::string passwordProblem(std::string_view password) {
  if (password.empty()) return "the password is empty";
  if (password.size() > kMaxPasswordBytes)
    return "the password is longer than " + std::to_string(kMaxPasswordBytes) + " bytes";
  for (unsigned char c : password) {
    if (c >= 0x80)
      return "the password holds non-ASCII characters, which SCRAM prepares with SASLprep (RFC 4013); "
             "use printable ASCII";
    if (c < 0x20 || c == 0x7F) return "the password holds a control character (SASLprep, RFC 4013 §2.3, prohibits it)";
  }
  return {};
}

namespace {

const EVP_MD* md(ScramHash h) { return h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(); }

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned len = 0;
  if (!HMAC(md(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out.data(), &len))
    throw std::runtime_error("HMAC failed");
  return {reinterpret_cast<const char*>(out.data()), len};
}

std::string digest(ScramHash h, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned len = 0;
  if (!EVP_Digest(data.data(), data.size(), out.data(), &len, md(h), nullptr)) throw std::runtime_error("digest failed");
  return {reinterpret_cast<const char*>(out.data()), len};
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

StoredScram deriveScram(ScramHash h, std::string_view password, std::string_view salt, std::uint32_t iterations) {
  if (iterations == 0 || iterations > kMaxScramIterations)
    throw std::invalid_argument("the SCRAM iteration count " + std::to_string(iterations) + " is outside 1.." +
                                std::to_string(kMaxScramIterations));
  if (salt.empty()) throw std::invalid_argument("the SCRAM salt is empty");
  // RFC 5802 §2.2: Hi() is PBKDF2 (RFC 8018) with HMAC-H and dkLen = the hash length.
  const int len = EVP_MD_get_size(md(h));
  std::string salted(static_cast<std::size_t>(len), '\0');
  if (!PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                         reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                         static_cast<int>(iterations), md(h), len, reinterpret_cast<unsigned char*>(salted.data())))
    throw std::runtime_error("PBKDF2 failed");
  StoredScram c;
  c.hash = h;
  c.salt = std::string(salt);
  c.iterations = iterations;
  c.storedKey = digest(h, hmac(h, salted, "Client Key"));  // RFC 5802 §3
  c.serverKey = hmac(h, salted, "Server Key");
  return c;
}

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = k >= 4 - pad ? 0 : b64Value(text[i + static_cast<std::size_t>(k)]);
      if (d < 0) return std::nullopt;
      v = (v << 6) | static_cast<unsigned>(d);
    }
    // Canonical: the bits under the padding are zero.
    if ((pad == 1 && (v & 0xFF)) || (pad == 2 && (v & 0xFFFF))) return std::nullopt;
    out += static_cast<char>((v >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(v & 0xFF);
  }
  return out;
}

namespace {

void upsert(DbSession& s, const std::string& userid, const StoredScram& c) {
  s.exec("INSERT INTO xcp_user_credential (userid, mechanism, salt, iterations, stored_key, server_key) "
         "VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE salt = VALUES(salt), iterations = VALUES(iterations), "
         "stored_key = VALUES(stored_key), server_key = VALUES(server_key), changed_at = CURRENT_TIMESTAMP(3)",
         {userid, std::string(mechanismName(c.hash)), base64Encode(c.salt), static_cast<std::int64_t>(c.iterations),
          base64Encode(c.storedKey), base64Encode(c.serverKey)});
}

}  // namespace

void CredentialStore::put(const std::string& userid, const StoredScram& c) {
  try {
    db_.transaction([&](DbSession& s) {
      upsert(s, userid, c);
    });
  } catch (const core::DbError& e) {
    if (e.code() == 1452) throw core::AdminError(404, "unknown_user", "no user '" + userid + "'");
    throw;
  }
}

void CredentialStore::setPassword(const std::string& userid, std::string_view password, std::uint32_t iterations) {
  if (auto p = passwordProblem(password); !p.empty()) throw core::AdminError(400, "invalid_argument", p);
  if (iterations < kMinScramIterations || iterations > kMaxScramIterations)
    throw core::AdminError(400, "invalid_argument",
                           "iterations " + std::to_string(iterations) + " is outside " +
                               std::to_string(kMinScramIterations) + ".." + std::to_string(kMaxScramIterations) +
                               " (RFC 7677 §4: at least 4096)");
  std::vector<StoredScram> creds;
  for (auto h : {ScramHash::Sha1, ScramHash::Sha256}) {
    std::string salt(16, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
      throw std::runtime_error("no random bytes for the SCRAM salt");
    creds.push_back(deriveScram(h, password, salt, iterations));
  }
  try {
    db_.transaction([&](DbSession& s) {
      if (s.query("SELECT userid FROM dir_user WHERE userid = ?", {userid}).empty())
        throw core::AdminError(404, "unknown_user", "no user '" + userid + "'");
      for (const auto& c : creds)
        upsert(s, userid, c);
    });
  } catch (const core::DbError& e) {
    if (e.code() == 1452) throw core::AdminError(404, "unknown_user", "no user '" + userid + "'");
    throw;
  }
}

std::optional<StoredScram> CredentialStore::get(const std::string& userid, ScramHash h) {
  auto r = db_.query(
      "SELECT salt, iterations, stored_key, server_key FROM xcp_user_credential WHERE userid = ? AND mechanism = ?",
      {userid, std::string(mechanismName(h))});
  if (r.empty()) return std::nullopt;
  auto salt = base64Decode(r.str(0, "salt"));
  auto stored = base64Decode(r.str(0, "stored_key"));
  auto server = base64Decode(r.str(0, "server_key"));
  if (!salt || !stored || !server)
    throw core::DbError("xcp_user_credential of '" + userid + "' holds a value that is not base64", 0, false);
  StoredScram c;
  c.hash = h;
  c.salt = *salt;
  c.iterations = static_cast<std::uint32_t>(r.num(0, "iterations"));
  c.storedKey = *stored;
  c.serverKey = *server;
  return c;
}

std::vector<ScramHash> CredentialStore::mechanisms(const std::string& userid) {
  auto r = db_.query("SELECT mechanism FROM xcp_user_credential WHERE userid = ? ORDER BY mechanism", {userid});
  std::vector<ScramHash> out;
  for (std::size_t i = 0; i < r.size(); ++i) {
    ScramHash h;
    if (parseMechanism(r.str(i, "mechanism"), h)) out.push_back(h);
  }
  return out;
}

bool CredentialStore::remove(const std::string& userid) {
  return db_.exec("DELETE FROM xcp_user_credential WHERE userid = ?", {userid}) != 0;
}

}  // namespace imp::xcp
