#include "imp/xcp_router/credential_store.h"

#include <imp/core/admin_http.h>
#include <imp/core/database.h>

#include <stdexcept>

namespace imp::xcp {

using core::DbSession;
using xmpp::ScramCredential;
using xmpp::ScramHash;

std::string_view mechanismName(ScramHash h) { return h == ScramHash::Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256"; }

bool parseMechanism(std::string_view name, ScramHash& out) {
  for (auto h : {ScramHash::Sha1, ScramHash::Sha256})
    if (name == mechanismName(h)) {
      out = h;
      return true;
    }
  return false;
}

namespace {

void upsert(DbSession& s, const std::string& userid, const ScramCredential& c) {
  s.exec("INSERT INTO xcp_user_credential (userid, mechanism, salt, iterations, stored_key, server_key) "
         "VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE salt = VALUES(salt), iterations = VALUES(iterations), "
         "stored_key = VALUES(stored_key), server_key = VALUES(server_key), changed_at = CURRENT_TIMESTAMP(3)",
         {userid, std::string(mechanismName(c.hash)), xmpp::base64Encode(c.salt),
          static_cast<std::int64_t>(c.iterations), xmpp::base64Encode(c.storedKey), xmpp::base64Encode(c.serverKey)});
}

}  // namespace

void CredentialStore::put(const std::string& userid, const ScramCredential& c) {
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
  std::vector<ScramCredential> creds;
  try {
    xmpp::checkScramIterations(iterations);
    for (auto h : {ScramHash::Sha1, ScramHash::Sha256})
      creds.push_back(xmpp::deriveScramCredential(h, password, iterations));  // SASLprep, fresh salt
  } catch (const std::invalid_argument& e) {
    throw core::AdminError(400, "invalid_argument", e.what());
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

std::optional<ScramCredential> CredentialStore::get(const std::string& userid, ScramHash h) {
  auto r = db_.query(
      "SELECT salt, iterations, stored_key, server_key FROM xcp_user_credential WHERE userid = ? AND mechanism = ?",
      {userid, std::string(mechanismName(h))});
  if (r.empty()) return std::nullopt;
  auto salt = xmpp::base64Decode(r.str(0, "salt"));
  auto stored = xmpp::base64Decode(r.str(0, "stored_key"));
  auto server = xmpp::base64Decode(r.str(0, "server_key"));
  if (!salt || !stored || !server)
    throw core::DbError("xcp_user_credential of '" + userid + "' holds a value that is not base64", 0, false);
  ScramCredential c;
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
