// The xcp-router stores on a real MariaDB (IMP_TEST_DB_URL, a migrated
// schema): what the fake database cannot show — utf8mb4 text, the 640-
// character JID keys under InnoDB's key limit, the real upsert and
// DATE_FORMAT, and the PS-1 / IM-5 limits held by concurrent writers; the
// bulk roster paths (MG-7, MG-9) with InnoDB's upserts, locks and indexes.
// Run by tests/integration/test_xcp_store.py, which owns the server. The
// MG-7 import rate case is skipped unless asked for
// (tests/bench/roster_import_bench.py).
#include <doctest/doctest.h>
#include <imp/core/database.h>
#include <imp/core/migrations.h>
#include <imp/core/mysql_database.h>
#include <imp/directory/directory.h>
#include <imp/xcp_router/credential_store.h>
#include <imp/xcp_router/offline_store.h>
#include <imp/xcp_router/presence_settings.h>
#include <imp/xcp_router/privacy_policy.h>
#include <imp/xcp_router/roster_store.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <thread>

#include <unistd.h>

#include "roster_bulk_cases.h"

using namespace imp;
using namespace imp::xcp;

namespace {

struct Db {
  std::unique_ptr<core::MySqlDatabase> db;
  Db() {
    const char* url = std::getenv("IMP_TEST_DB_URL");
    REQUIRE_MESSAGE(url, "IMP_TEST_DB_URL is not set (run through tests/integration/test_xcp_store.py)");
    db = std::make_unique<core::MySqlDatabase>(core::parseDbUrl(url),
                                               std::make_shared<spdlog::logger>("db", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  // A fresh user per test case, so the cases do not see each other's rows.
  std::string user(const std::string& id) {
    directory::Directory dir(*db);
    dir.deleteUser(id);
    directory::User u;
    u.userid = id;
    u.imAddress = id + "@mdb.example.com";
    dir.addUser(u);
    return id;
  }
  // The bulk scenarios with users of their own ("<prefix>-<name>").
  bulkcases::Env bulkEnv(const std::string& prefix) {
    return {*db, [this, prefix](const std::string& name) { return user(prefix + "-" + name); }, "mdb.example.com"};
  }
};

}  // namespace

TEST_CASE("MariaDB: rosters keep utf8mb4 names and groups, 640-character JIDs, versions and deltas") {
  Db d;
  auto ann = d.user("mdb-ann");
  RosterStore r(*d.db);
  const std::string emoji = "Caf\xc3\xa9 \xf0\x9f\x98\x80";  // a 4-byte character needs utf8mb4
  auto longJid = std::string(600, 'u') + "@" + std::string(39, 'd');  // 640 characters
  REQUIRE(r.setItem(ann, "carol@example.org", emoji, {emoji, "Work"}, 200).changed);
  REQUIRE(r.setItem(ann, longJid, "", {}, 200).changed);
  auto roster = r.get(ann);
  REQUIRE(roster.items.size() == 2);
  CHECK(roster.version == 2);
  auto carol = r.item(ann, "carol@example.org");
  REQUIRE(carol);
  CHECK(carol->name == emoji);
  CHECK(carol->groups == std::vector<std::string>{emoji, "Work"});  // binary order: C < W
  CHECK(r.item(ann, longJid));
  // Binary collation: JIDs arrive normalised; another case is another item.
  CHECK_FALSE(r.item(ann, "Carol@example.org"));
  SubscriptionState s;
  s.subscription = Subscription::To;
  s.pendingIn = true;
  r.setSubscription(ann, "carol@example.org", s, emoji, PresenceSettings{});
  CHECK(r.item(ann, "carol@example.org")->pendingInStatus == emoji);
  r.remove(ann, longJid);
  auto delta = r.since(ann, "2");
  REQUIRE(delta.items.size() == 2);
  CHECK_FALSE(delta.full);
  CHECK(delta.items[0].contact == "carol@example.org");
  CHECK(delta.items[1].removed);
  directory::Directory(*d.db).deleteUser(ann);
  CHECK(d.db->query("SELECT COUNT(*) AS n FROM xcp_roster_item WHERE owner = 'mdb-ann'").num(0, "n") == 0);
}

TEST_CASE("MariaDB: PS-1 contact limit holds with two writers adding at once") {
  Db d;
  auto bob = d.user("mdb-bob");
  RosterStore r(*d.db);
  std::atomic<int> stored{0}, refused{0};
  auto writer = [&](char tag) {
    for (int i = 0; i < 8; ++i) {
      auto w = r.setItem(bob, std::string(1, tag) + std::to_string(i) + "@example.org", "", {}, 5);
      (w.refused ? refused : stored)++;
    }
  };
  std::thread a(writer, 'a'), b(writer, 'b');
  a.join();
  b.join();
  CHECK(stored.load() == 5);
  CHECK(refused.load() == 11);
  CHECK(r.contacts(bob) == 5);
  CHECK(r.version(bob) == 5);
}

TEST_CASE("MariaDB: IM-5 offline quota holds with two senders at once; order and stamps") {
  Db d;
  auto cy = d.user("mdb-cy");
  OfflineStore o(*d.db);
  std::atomic<int> stored{0}, full{0};
  auto sender = [&](char tag) {
    for (int i = 0; i < 6; ++i) {
      auto a = o.append(cy, std::string(1, tag) + "@example.org/r", "<message>" + std::to_string(i) + "</message>", 7);
      (a.status == OfflineAppend::Status::Stored ? stored : full)++;
    }
  };
  std::thread a(sender, 'a'), b(sender, 'b');
  a.join();
  b.join();
  CHECK(stored.load() == 7);
  CHECK(full.load() == 5);
  auto msgs = o.fetch(cy);
  REQUIRE(msgs.size() == 7);
  for (std::size_t i = 1; i < msgs.size(); ++i) CHECK(msgs[i].id > msgs[i - 1].id);
  CHECK(std::regex_match(msgs[0].stamp, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  std::vector<std::uint64_t> ids;
  for (const auto& m : msgs) ids.push_back(m.id);
  CHECK(o.remove(cy, ids) == 7);
  CHECK(o.count(cy) == 0);
}

TEST_CASE("MariaDB: privacy decisions (upsert), block list, and credentials") {
  Db d;
  auto dee = d.user("mdb-dee");
  PresenceSettingsStore settings(*d.db);
  LivePresenceSettings live(settings);
  live.reload();
  PrivacyStore decisions(*d.db);
  BlockList blocks(*d.db);
  PrivacyPolicy policy(decisions, blocks, live);
  policy.remember(dee, "w@example.org", PrivacyDecision::Block);
  policy.remember(dee, "w@example.org", PrivacyDecision::Allow);  // ON DUPLICATE KEY UPDATE
  CHECK(decisions.list(dee).size() == 1);
  CHECK(std::string(toString(*decisions.decision(dee, "w@example.org"))) == "allow");
  blocks.block(dee, {"spam.example"});
  CHECK(std::string(toString(policy.decide(dee, "x@spam.example/r"))) == "polite-block");
  CredentialStore creds(*d.db);
  creds.setPassword(dee, "pencil", 4096);
  auto c = creds.get(dee, xmpp::ScramHash::Sha256);
  REQUIRE(c);
  CHECK(xmpp::deriveScramCredential(xmpp::ScramHash::Sha256, "pencil", 4096, c->salt) == *c);
  creds.setPassword(dee, "pencil2", 4096);  // replaces
  CHECK(d.db->query("SELECT COUNT(*) AS n FROM xcp_user_credential WHERE userid = 'mdb-dee'").num(0, "n") == 2);
}

TEST_CASE("MariaDB: owners subscribing to each other at once all succeed (InnoDB deadlocks are retried, IM-5)") {
  // The session manager writes each owner's side of a subscription in that
  // owner's transaction, from several workers at once. New rows of
  // neighbouring owners take gap locks on the (owner, contact) index, which
  // InnoDB resolves by killing one transaction (1213); the transaction is run
  // again, never reported to the session manager as a lost stanza.
  Db d;
  const int users = 24, half = 5, threads = 8;
  std::vector<std::string> ids;
  for (int i = 0; i < users; ++i) ids.push_back(d.user("mdb-ring" + std::to_string(i)));
  RosterStore r(*d.db);
  PresenceSettings limits;
  SubscriptionState both;
  both.subscription = Subscription::Both;
  std::atomic<int> failures{0}, written{0};
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int k; (k = next++) < users * 2 * half;) {
        int i = k % users, d2 = k / users;  // every owner's first neighbour, then the second...
        int j = (i + (d2 < half ? d2 + 1 : -(d2 - half + 1)) + users) % users;
        try {
          auto w = r.setSubscription(ids[i], "mdb-ring" + std::to_string(j) + "@mdb.example.com", both, std::nullopt,
                                     limits);
          if (w.changed) ++written;
        } catch (const std::exception& e) {
          ++failures;
          MESSAGE("setSubscription failed: " << std::string(e.what()));
        }
      }
    });
  for (auto& t : pool) t.join();
  CHECK(failures.load() == 0);
  CHECK(written.load() == users * 2 * half);
  for (const auto& id : ids) CHECK(r.contacts(id) == 2 * half);
  MESSAGE("transactions run again after a deadlock: " << d.db->conflictRetries());
}

// ---- MG-7 / MG-9 bulk paths: the scenarios of roster_bulk_cases.h on InnoDB ----

TEST_CASE("MariaDB: MG-7 import of new local and remote contacts, both sides, a pair twice") {
  Db d;
  auto e = d.bulkEnv("mb1");
  bulkcases::importNewContacts(e);
}

TEST_CASE("MariaDB: MG-7 PS-1 contact, watcher and contact-side limits") {
  Db d;
  auto e = d.bulkEnv("mb2");
  bulkcases::importLimits(e);
}

TEST_CASE("MariaDB: MG-7 tombstones revived, pending-only items made real, subscription merges") {
  Db d;
  auto e = d.bulkEnv("mb3");
  bulkcases::importMerges(e);
}

TEST_CASE("MariaDB: MG-7 refused input names the row and writes nothing") {
  Db d;
  auto e = d.bulkEnv("mb4");
  bulkcases::importRefusedInput(e);
}

TEST_CASE("MariaDB: MG-7 / MG-9 batches and a rename in one transaction see each other") {
  Db d;
  auto e = d.bulkEnv("mb10");
  bulkcases::batchesInOneTransaction(e);
}

TEST_CASE("MariaDB: MG-7 long utf8mb4 values and many rows in statements under 1 MB") {
  Db d;
  auto e = d.bulkEnv("mb5");
  bulkcases::importChunks(e);
}

TEST_CASE("MariaDB: MG-7 new items keep their groups when the server's ids are not consecutive") {
  // auto_increment_increment 2 (as a multi-primary cluster sets it): a
  // multi-row INSERT's ids step by 2, so LAST_INSERT_ID() + k is no row's id
  // and the store must read the ids back.
  Db d;
  auto e = d.bulkEnv("mb11");
  auto ann = e.user("ann"), bob = e.user("bob");
  std::vector<BulkContact> batch;
  for (int i = 0; i < 40; ++i)
    batch.push_back(e.remote(ann, "c" + std::to_string(i) + "@remote.example", "C", {"G" + std::to_string(i)}));
  batch.push_back(e.local(bob, ann, "Ann", {"Work", "Home"}));
  std::vector<BulkResult> res;
  RosterStore r(*d.db);
  d.db->transaction([&](core::DbSession& s) {
    s.exec("SET SESSION auto_increment_increment = 2");
    res = r.importContacts(s, batch, PresenceSettings{0, 0});
    s.exec("SET SESSION auto_increment_increment = 1");
  });
  REQUIRE(res.size() == batch.size());
  for (const auto& x : res) CHECK(x.outcome == BulkOutcome::Imported);
  auto ids = d.db->query("SELECT id FROM xcp_roster_item WHERE owner = ? AND contact LIKE 'c%' ORDER BY id", {ann});
  REQUIRE(ids.size() == 40);
  CHECK(ids.num(1, "id") - ids.num(0, "id") == 2);  // the case this test is about
  for (int i = 0; i < 40; ++i) {
    auto it = r.item(ann, "c" + std::to_string(i) + "@remote.example");
    REQUIRE(it);
    CHECK(it->groups == std::vector<std::string>{"G" + std::to_string(i)});
  }
  CHECK(r.item(bob, e.jid(ann))->groups == std::vector<std::string>{"Home", "Work"});
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_roster_group g JOIN xcp_roster_item i ON i.id = g.item_id "
                "WHERE i.owner IN (?, ?)",
                {ann, bob}) == 42);
}

TEST_CASE("MariaDB: MG-9 rename moves items, leaves owners of the new ID alone, rewrites privacy and blocks") {
  Db d;
  auto e = d.bulkEnv("mb6");
  bulkcases::renameContact(e);
}

TEST_CASE("MariaDB: MG-9 a pending request from the new ID survives the rename onto it") {
  Db d;
  auto e = d.bulkEnv("mb7");
  bulkcases::renameOntoPendingRequest(e);
}

TEST_CASE("MariaDB: MG-9 rename finds the contact through its index, not a table scan") {
  Db d;
  auto plan = d.db->query("EXPLAIN SELECT owner FROM xcp_roster_item WHERE contact IN ('a@x.org', 'b@x.org')");
  REQUIRE(plan.size() == 1);
  CHECK(plan.str(0, "possible_keys") == "xcp_roster_item_by_contact");
  auto p = d.db->query("EXPLAIN UPDATE xcp_privacy_decision SET watcher = 'b@x.org' WHERE watcher = 'a@x.org'");
  REQUIRE(p.size() == 1);
  CHECK(p.str(0, "possible_keys") == "xcp_privacy_decision_by_watcher");
  p = d.db->query("EXPLAIN UPDATE xcp_block SET blocked = 'b@x.org' WHERE blocked = 'a@x.org'");
  REQUIRE(p.size() == 1);
  CHECK(p.str(0, "possible_keys") == "xcp_block_by_blocked");
}

TEST_CASE("MariaDB: PS-1 contact limit holds with a bulk import and a client adding at once") {
  // The import locks the owners' directory rows like the single-item paths
  // (lockOwner), so neither passes the last free place behind the other's back.
  Db d;
  auto e = d.bulkEnv("mb8");
  auto owner = e.user("owner");
  RosterStore r(*d.db);
  const auto lim = bulkcases::limits(20, 0);
  std::atomic<int> imported{0}, refusedBulk{0}, stored{0}, refusedSingle{0}, failures{0};
  std::thread bulk([&] {
    for (int b = 0; b < 6; ++b) {
      std::vector<BulkContact> batch;
      for (int i = 0; i < 4; ++i) batch.push_back(e.remote(owner, "bulk" + std::to_string(b * 4 + i) + "@remote.example"));
      try {
        for (const auto& x : e.import(batch, lim)) (x.outcome == BulkOutcome::Imported ? imported : refusedBulk)++;
      } catch (const std::exception& x) {
        ++failures;
        MESSAGE("import failed: " << std::string(x.what()));
      }
    }
  });
  std::thread single([&] {
    for (int i = 0; i < 24; ++i) {
      try {
        auto w = r.setItem(owner, "client" + std::to_string(i) + "@remote.example", "", {}, lim.maxContacts);
        (w.refused ? refusedSingle : stored)++;
      } catch (const std::exception& x) {
        ++failures;
        MESSAGE("setItem failed: " << std::string(x.what()));
      }
    }
  });
  bulk.join();
  single.join();
  CHECK(failures.load() == 0);
  CHECK(imported.load() + stored.load() == 20);
  CHECK(refusedBulk.load() + refusedSingle.load() == 28);
  CHECK(r.contacts(owner) == 20);
  CHECK(r.version(owner) == 20);
}

TEST_CASE("MariaDB: MG-7 batches of overlapping users imported at once all arrive (deadlocks are run again)") {
  Db d;
  auto e = d.bulkEnv("mb9");
  std::vector<std::string> users;
  for (int i = 0; i < 40; ++i) users.push_back(e.user("u" + std::to_string(i)));
  // Every user imports every other; four writers, batches of one owner each.
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&] {
      for (int i; (i = next++) < static_cast<int>(users.size());) {
        std::vector<BulkContact> batch;
        for (int j = 0; j < static_cast<int>(users.size()); ++j)
          if (j != i) batch.push_back(e.local(users[i], users[j], "", {"All"}));
        try {
          e.import(batch, bulkcases::limits(0, 0));
        } catch (const std::exception& x) {
          ++failures;
          MESSAGE("import failed: " << std::string(x.what()));
        }
      }
    });
  for (auto& t : pool) t.join();
  CHECK(failures.load() == 0);
  RosterStore r(*d.db);
  for (const auto& u : users) {
    auto roster = r.get(u);
    CHECK(roster.items.size() == users.size() - 1);
    CHECK(roster.version == 2 * (users.size() - 1));  // each side of each pair once
    for (const auto& it : roster.items) CHECK(it.state.name() == "Both");
  }
  MESSAGE("transactions run again after a deadlock: " << d.db->conflictRetries());
}

// ---- MG-7 import rate: run by hand (tests/bench/roster_import_bench.py) ----
//
// USERS users (default 10,000), each importing CONTACTS local contacts
// (default 100; user i lists users i+1, i+1+STEP, ..., STEP being
// USERS/CONTACTS unless set; STEP=1 is bat_bench.sh's file), in
// batches of BATCH rows (default 1000), one transaction per batch as the
// bulk job commits them, with the PS-1 limits MAX_CONTACTS / MAX_WATCHERS
// (default 0 = no limit, as the migration procedure sets them). Prints
// rows/s and the batch latencies. Skipped unless asked for (--no-skip).
namespace {

std::uint64_t benchEnv(const char* name, std::uint64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : def;
}

// CPU seconds (user + system) of process `pid` so far (/proc/<pid>/stat);
// 0 when unknown.
double cpuSeconds(std::uint64_t pid) {
  if (!pid) return 0;
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return 0;
  char buf[1024] = {};
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string stat(buf, n);
  auto close = stat.rfind(')');  // after the command name, which may hold spaces
  if (close == std::string::npos) return 0;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(stat.c_str() + close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return 0;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The session of a batch, timing each statement by the start of its text
// (the breakdown printed at the end).
class TimedSession final : public core::DbSession {
 public:
  TimedSession(core::DbSession& s, std::map<std::string, std::pair<std::uint64_t, double>>& times)
      : s_(s), times_(times) {}
  core::Rows query(const std::string& sql, const core::SqlParams& p) override {
    auto t0 = std::chrono::steady_clock::now();
    auto r = s_.query(sql, p);
    count(sql, t0);
    return r;
  }
  std::uint64_t exec(const std::string& sql, const core::SqlParams& p) override {
    auto t0 = std::chrono::steady_clock::now();
    auto r = s_.exec(sql, p);
    count(sql, t0);
    return r;
  }
  void execRaw(const std::string& sql) override { s_.execRaw(sql); }
  std::uint64_t lastInsertId() override { return s_.lastInsertId(); }

 private:
  void count(const std::string& sql, std::chrono::steady_clock::time_point t0) {
    auto& t = times_[sql.substr(0, 60)];
    ++t.first;
    t.second += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  core::DbSession& s_;
  std::map<std::string, std::pair<std::uint64_t, double>>& times_;
};

}  // namespace

TEST_CASE("MariaDB bench: MG-7 import rate" * doctest::skip()) {
  Db d;
  if (const char* sqlDir = std::getenv("IMP_SQL_DIR")) core::Migrator(*d.db, sqlDir, "bench", nullptr).migrate();
  const auto users = benchEnv("USERS", 10000), contacts = benchEnv("CONTACTS", 100), batchRows = benchEnv("BATCH", 1000);
  PresenceSettings lim;
  lim.maxContacts = static_cast<std::uint32_t>(benchEnv("MAX_CONTACTS", 0));
  lim.maxWatchers = static_cast<std::uint32_t>(benchEnv("MAX_WATCHERS", 0));
  REQUIRE(contacts < users);
  auto id = [](std::uint64_t i) { return "bench" + std::to_string(i); };
  auto jid = [&](std::uint64_t i) { return id(i) + "@bench.example.com"; };
  // The users, a few hundred per statement (the directory's addUser is a transaction each).
  d.db->exec("DELETE FROM dir_user WHERE userid LIKE 'bench%'");
  for (std::uint64_t i = 0; i < users;) {
    std::string sql = "INSERT INTO dir_user (userid, im_address, im_domain) VALUES ";
    core::SqlParams p;
    for (std::uint64_t k = 0; k < 500 && i < users; ++k, ++i) {
      sql += k ? ", (?, ?, 'bench.example.com')" : "(?, ?, 'bench.example.com')";
      p.insert(p.end(), {id(i), jid(i)});
    }
    d.db->exec(sql, p);
  }
  const std::uint64_t step = benchEnv("STEP", users / contacts);  // 1: the next CONTACTS users (bat_bench.sh)
  RosterStore r(*d.db);
  std::vector<BulkContact> batch;
  std::vector<double> latencies;
  std::map<std::string, std::pair<std::uint64_t, double>> times;
  std::uint64_t rows = 0, imported = 0;
  auto flush = [&] {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<BulkResult> res;
    d.db->transaction([&](core::DbSession& s) {
      TimedSession timed(s, times);
      res = r.importContacts(timed, batch, lim);
    });
    latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    for (const auto& x : res) imported += x.outcome == BulkOutcome::Imported;
    rows += batch.size();
    batch.clear();
  };
  // The server's CPU (its pid from the runner) and this process's: on a
  // shared machine the rate depends on what else runs; CPU per row does not.
  const auto serverPid = benchEnv("MARIADBD_PID", 0);
  const double server0 = cpuSeconds(serverPid), client0 = cpuSeconds(static_cast<std::uint64_t>(getpid()));
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < users; ++i)
    for (std::uint64_t k = 0; k < contacts; ++k) {
      const std::uint64_t j = (i + 1 + k * step) % users;
      batch.push_back({id(i), jid(i), jid(j), id(j), "Contact " + std::to_string(j), {"General"}});
      if (batch.size() == batchRows) flush();
    }
  if (!batch.empty()) flush();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double serverCpu = cpuSeconds(serverPid) - server0;
  const double clientCpu = cpuSeconds(static_cast<std::uint64_t>(getpid())) - client0;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) { return latencies[static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1))]; };
  std::printf("MG-7 import: %llu users x %llu local contacts, batches of %llu, limits %u/%u: %llu rows in %.1f s = "
              "%.0f rows/s; batch p50 %.1f ms, p99 %.1f ms, max %.1f ms; deadlock retries %llu\n",
              static_cast<unsigned long long>(users), static_cast<unsigned long long>(contacts),
              static_cast<unsigned long long>(batchRows), lim.maxContacts, lim.maxWatchers,
              static_cast<unsigned long long>(rows), secs, static_cast<double>(rows) / secs, pct(0.5), pct(0.99),
              latencies.back(), static_cast<unsigned long long>(d.db->conflictRetries()));
  for (const auto& [sql, t] : times)
    std::printf("  %8.2f s %6llu x  %s...\n", t.second, static_cast<unsigned long long>(t.first), sql.c_str());
  if (serverPid)
    std::printf("CPU: MariaDB %.1f s (%.0f rows per CPU-second), this client %.1f s (%.0f rows per CPU-second)\n",
                serverCpu, static_cast<double>(rows) / serverCpu, clientCpu, static_cast<double>(rows) / clientCpu);
  CHECK(imported == rows);
  // Every user: its contacts ("to") and the users listing it ("from").
  CHECK(r.contacts(id(users / 2)) == 2 * contacts);
  CHECK(r.version(id(users / 2)) == 2 * contacts);
}

// MG-9 rename rate (B-BAT-RENAME's store part): RENAME_OWNERS users
// (default 1000) each holding RENAME_REFS (default 100) of RENAME_IDS
// (default 1000) remote contact IDs, so every ID is referenced by
// RENAME_OWNERS x RENAME_REFS / RENAME_IDS items (100); then every ID is
// renamed, one transaction each as the job commits them. Skipped unless
// asked for (--no-skip).
TEST_CASE("MariaDB bench: MG-9 rename rate" * doctest::skip()) {
  Db d;
  if (const char* sqlDir = std::getenv("IMP_SQL_DIR")) core::Migrator(*d.db, sqlDir, "bench", nullptr).migrate();
  const auto owners = benchEnv("RENAME_OWNERS", 1000), refs = benchEnv("RENAME_REFS", 100),
             ids = benchEnv("RENAME_IDS", 1000);
  REQUIRE(refs <= ids);
  auto id = [](std::uint64_t i) { return "rbench" + std::to_string(i); };
  auto lync = [](std::uint64_t k, const char* form) { return std::string(form) + std::to_string(k) + "@ms.example.org"; };
  d.db->exec("DELETE FROM dir_user WHERE userid LIKE 'rbench%'");
  for (std::uint64_t i = 0; i < owners;) {
    std::string sql = "INSERT INTO dir_user (userid, im_address, im_domain) VALUES ";
    core::SqlParams p;
    for (std::uint64_t k = 0; k < 500 && i < owners; ++k, ++i) {
      sql += k ? ", (?, ?, 'rbench.example.com')" : "(?, ?, 'rbench.example.com')";
      p.insert(p.end(), {id(i), id(i) + "@rbench.example.com"});
    }
    d.db->exec(sql, p);
  }
  RosterStore r(*d.db);
  std::vector<BulkContact> batch;
  auto flush = [&] {
    d.db->transaction([&](core::DbSession& s) { r.importContacts(s, batch, PresenceSettings{0, 0}); });
    batch.clear();
  };
  for (std::uint64_t i = 0; i < owners; ++i)
    for (std::uint64_t k = 0; k < refs; ++k) {
      batch.push_back({id(i), id(i) + "@rbench.example.com", lync((i + k) % ids, "john.smith"), "", "John", {"Lync"}});
      if (batch.size() == 1000) flush();
    }
  if (!batch.empty()) flush();
  const auto serverPid = benchEnv("MARIADBD_PID", 0);
  const double server0 = cpuSeconds(serverPid);
  std::uint64_t changed = 0;
  std::map<std::string, std::pair<std::uint64_t, double>> times;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t k = 0; k < ids; ++k) {
    RenameResult res;
    d.db->transaction([&](core::DbSession& s) {
      TimedSession timed(s, times);
      res = r.renameContact(timed, lync(k, "john.smith"), lync(k, "jsmith"));
    });
    changed += res.changed.size();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [sql, t] : times)
    std::printf("  %8.2f s %6llu x  %s...\n", t.second, static_cast<unsigned long long>(t.first), sql.c_str());
  std::printf("MG-9 rename: %llu IDs each in %llu of %llu users' lists: %llu lists changed in %.1f s = %.0f IDs/s, "
              "%.0f items/s; MariaDB CPU %.1f s\n",
              static_cast<unsigned long long>(ids), static_cast<unsigned long long>(owners * refs / ids),
              static_cast<unsigned long long>(owners), static_cast<unsigned long long>(changed), secs,
              static_cast<double>(ids) / secs, static_cast<double>(changed) / secs, cpuSeconds(serverPid) - server0);
  CHECK(changed == owners * refs);
  CHECK(r.item(id(0), lync(0, "jsmith")));
  CHECK_FALSE(r.item(id(0), lync(0, "john.smith")));
}
