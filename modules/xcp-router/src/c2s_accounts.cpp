// C2sAccounts over the cluster database: the directory's users, the
// credential store's salted keys and the nodes' client endpoints.
#include <imp/core/database.h>
#include <imp/directory/directory.h>

#include "imp/xcp_router/c2s.h"
#include "imp/xcp_router/credential_store.h"

namespace imp::xcp {

namespace {

class DatabaseAccounts : public C2sAccounts {
 public:
  explicit DatabaseAccounts(core::Database& db) : db_(db), directory_(db), credentials_(db) {}

  std::optional<Account> account(const std::string& address) override {
    auto u = directory_.userByAddress(address);
    if (!u) return std::nullopt;
    return Account{u->userid, u->imAddress, u->licensed, u->homeNode};
  }

  std::optional<xmpp::ScramCredential> credential(const std::string& userid, xmpp::ScramHash hash) override {
    return credentials_.get(userid, hash);
  }

  std::optional<std::string> clientAddressOf(const std::string& nodeId) override {
    auto rows = db_.query("SELECT host, client_port FROM xcp_node_endpoint WHERE node_id = ?", {nodeId});
    if (rows.empty()) return std::nullopt;
    return rows.str(0, "host") + ":" + std::to_string(rows.num(0, "client_port"));
  }

 private:
  core::Database& db_;
  directory::Directory directory_;
  CredentialStore credentials_;
};

}  // namespace

std::shared_ptr<C2sAccounts> databaseAccounts(core::Database& db) { return std::make_shared<DatabaseAccounts>(db); }

}  // namespace imp::xcp
