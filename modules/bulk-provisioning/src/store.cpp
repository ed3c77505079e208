#include "imp/bulk_provisioning/store.h"

#include <imp/core/admin_http.h>
#include <imp/core/database.h>
#include <openssl/evp.h>

#include <memory>
#include <regex>

namespace imp::bat {

using core::AdminError;

namespace {

constexpr const char* kTime = "'%Y-%m-%d %H:%i:%s'";

std::string fileColumns() {
  return std::string("id, name, kind, size, sha256, received, complete, DATE_FORMAT(uploaded_at, ") + kTime +
         ") AS uploaded_at";
}

FileInfo fileRow(const core::Rows& r, std::size_t i) {
  FileInfo f;
  f.id = r.num(i, "id");
  f.name = r.str(i, "name");
  f.kind = jobKindOf(r.str(i, "kind")).value_or(JobKind::Import);
  f.size = static_cast<std::uint64_t>(r.num(i, "size"));
  f.sha256 = r.str(i, "sha256");
  f.received = static_cast<std::uint64_t>(r.num(i, "received"));
  f.complete = r.num(i, "complete") != 0;
  f.uploadedAt = r.str(i, "uploaded_at");
  return f;
}

AdminError noFile(const std::string& name) {
  return AdminError(404, "unknown_file", "no bulk file named '" + name + "' (impctl bat file list)");
}

std::string hexDigest(const unsigned char* md, unsigned len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string jobColumns() {
  auto t = [](const char* c) { return std::string("DATE_FORMAT(") + c + ", " + kTime + ") AS " + c; };
  return "id, kind, file_id, file_name, status, " + t("run_at") + ", " + t("created_at") + ", " + t("started_at") +
         ", " + t("ended_at") +
         ", node_id, cancel_requested, detail, rows_total, rows_done, ck_offset, ck_line, applied, ignored,"
         " internal_errors, not_processed, lists_failed, retrieved, notified, not_notified,"
         " TIMESTAMPDIFF(MICROSECOND, started_at, COALESCE(ended_at, UTC_TIMESTAMP(3))) AS elapsed_us";
}

JobInfo jobRow(const core::Rows& r, std::size_t i) {
  JobInfo j;
  auto u = [&](const char* c) { return static_cast<std::uint64_t>(r.num(i, c)); };
  j.id = r.num(i, "id");
  j.kind = jobKindOf(r.str(i, "kind")).value_or(JobKind::Import);
  if (r.get(i, "file_id")) j.fileId = r.num(i, "file_id");
  j.fileName = r.str(i, "file_name");
  j.status = jobStatusOf(r.str(i, "status")).value_or(JobStatus::Failed);
  j.runAt = r.str(i, "run_at");
  j.createdAt = r.str(i, "created_at");
  j.startedAt = r.str(i, "started_at");
  j.endedAt = r.str(i, "ended_at");
  j.nodeId = r.str(i, "node_id");
  j.cancelRequested = r.num(i, "cancel_requested") != 0;
  j.detail = r.str(i, "detail");
  j.rowsTotal = u("rows_total");
  j.rowsDone = u("rows_done");
  j.checkpointOffset = u("ck_offset");
  j.checkpointLine = u("ck_line");
  j.counts.applied = u("applied");
  j.counts.ignored = u("ignored");
  j.counts.internalErrors = u("internal_errors");
  j.counts.notProcessed = u("not_processed");
  j.counts.listsFailed = u("lists_failed");
  j.counts.retrieved = u("retrieved");
  j.counts.notified = u("notified");
  j.counts.notNotified = u("not_notified");
  j.elapsedSeconds = static_cast<double>(r.num(i, "elapsed_us")) / 1e6;
  return j;
}

AdminError noJob(std::int64_t id) {
  return AdminError(404, "unknown_job", "no bulk job " + std::to_string(id) + " (impctl bat job list)");
}

// "YYYY-MM-DD HH:MM[:SS]" or with a 'T'; "" when it is not one.
std::string canonicalTime(const std::string& t) {
  static const std::regex re(R"(^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2})?(Z)?$)");
  std::smatch m;
  if (!std::regex_match(t, m, re)) return {};
  return m[1].str() + " " + m[2].str() + (m[3].matched ? m[3].str() : ":00");
}

}  // namespace

std::string checkFileName(const std::string& name) {
  if (name.empty() || name.size() > 255) return "a file name has 1 to 255 characters";
  if (name == "." || name == "..") return "'" + name + "' is not a file name";
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
      return "a file name has no '/', '\\' or control characters";
  return {};
}

FileInfo FileStore::begin(const std::string& name, JobKind kind, std::uint64_t size, const std::string& sha256,
                          bool replace) {
  if (auto e = checkFileName(name); !e.empty()) throw AdminError(400, "invalid_file_name", e);
  static const std::regex hex("^[0-9a-f]{64}$");
  if (!std::regex_match(sha256, hex)) throw AdminError(400, "invalid_sha256", "sha256 must be 64 lower-case hex digits");
  db_.transaction([&](core::DbSession& s) {
    auto r = s.query("SELECT id, complete FROM bat_file WHERE name = ? FOR UPDATE", {name});
    if (!r.empty()) {
      if (r.num(0, "complete") != 0 && !replace)
        throw AdminError(409, "file_exists",
                         "a file named '" + name + "' exists; delete it first or upload with --replace");
      auto inUse = s.query("SELECT id FROM bat_job WHERE file_id = ? AND status IN ('pending','running') LIMIT 1",
                           {r.num(0, "id")});
      if (!inUse.empty())
        throw AdminError(409, "file_in_use",
                         "'" + name + "' is the file of job " + inUse.str(0, "id") + ", which has not ended");
      s.exec("DELETE FROM bat_file WHERE id = ?", {r.num(0, "id")});
    }
    s.exec("INSERT INTO bat_file (name, kind, size, sha256, uploaded_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3))",
           {name, std::string(nameOf(kind)), static_cast<std::int64_t>(size), sha256});
  });
  return *info(name);
}

FileInfo FileStore::put(const std::string& name, std::uint32_t seq, const std::string& data) {
  if (data.size() > kPartBytes)
    throw AdminError(413, "part_too_large", "a part holds at most " + std::to_string(kPartBytes) + " bytes");
  db_.transaction([&](core::DbSession& s) {
    auto r = s.query("SELECT id, size, received, complete FROM bat_file WHERE name = ? FOR UPDATE", {name});
    if (r.empty()) throw noFile(name);
    if (r.num(0, "complete") != 0) throw AdminError(409, "file_complete", "'" + name + "' is complete already");
    const auto id = r.num(0, "id");
    auto parts = s.query("SELECT COUNT(*) AS n FROM bat_file_part WHERE file_id = ?", {id});
    const auto expected = static_cast<std::uint32_t>(parts.num(0, "n"));
    if (seq != expected)
      throw AdminError(409, "part_out_of_order",
                       "part " + std::to_string(seq) + " of '" + name + "' came, part " + std::to_string(expected) +
                           " was expected");
    const auto received = static_cast<std::uint64_t>(r.num(0, "received")) + data.size();
    if (received > static_cast<std::uint64_t>(r.num(0, "size")))
      throw AdminError(400, "file_too_long",
                       "'" + name + "' grows past the " + r.str(0, "size") + " bytes announced for it");
    s.exec("INSERT INTO bat_file_part (file_id, seq, data) VALUES (?, ?, ?)",
           {id, static_cast<std::int64_t>(seq), data});
    s.exec("UPDATE bat_file SET received = ? WHERE id = ?", {static_cast<std::int64_t>(received), id});
  });
  return *info(name);
}

FileInfo FileStore::finish(const std::string& name) {
  auto f = info(name);
  if (!f) throw noFile(name);
  if (f->complete) return *f;
  if (f->received != f->size)
    throw AdminError(409, "file_incomplete",
                     "'" + name + "' has " + std::to_string(f->received) + " of its " + std::to_string(f->size) +
                         " bytes");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  for (std::uint32_t seq = 0;; ++seq) {
    auto r = db_.query("SELECT data FROM bat_file_part WHERE file_id = ? AND seq = ?",
                       {f->id, static_cast<std::int64_t>(seq)});
    if (r.empty()) break;
    auto d = r.str(0, "data");
    EVP_DigestUpdate(ctx.get(), d.data(), d.size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  const auto got = hexDigest(md, len);
  if (got != f->sha256) {
    db_.exec("DELETE FROM bat_file WHERE id = ?", {f->id});
    throw AdminError(400, "checksum_mismatch",
                     "'" + name + "' arrived with SHA-256 " + got + ", not " + f->sha256 + "; upload it again");
  }
  db_.exec("UPDATE bat_file SET complete = TRUE WHERE id = ?", {f->id});
  return *info(name);
}

std::vector<FileInfo> FileStore::list() {
  auto r = db_.query("SELECT " + fileColumns() + " FROM bat_file ORDER BY name");
  std::vector<FileInfo> out;
  for (std::size_t i = 0; i < r.size(); ++i) out.push_back(fileRow(r, i));
  return out;
}

std::optional<FileInfo> FileStore::info(const std::string& name) {
  auto r = db_.query("SELECT " + fileColumns() + " FROM bat_file WHERE name = ?", {name});
  if (r.empty()) return std::nullopt;
  return fileRow(r, 0);
}

std::string FileStore::part(const std::string& name, std::uint32_t seq) {
  auto f = info(name);
  if (!f) throw noFile(name);
  if (!f->complete) throw AdminError(409, "file_incomplete", "'" + name + "' is still being uploaded");
  auto r = db_.query("SELECT data FROM bat_file_part WHERE file_id = ? AND seq = ?",
                     {f->id, static_cast<std::int64_t>(seq)});
  return r.empty() ? std::string() : r.str(0, "data");
}

std::string FileStore::content(std::int64_t id) {
  std::string out;
  for (std::uint32_t seq = 0;; ++seq) {
    auto r = db_.query("SELECT data FROM bat_file_part WHERE file_id = ? AND seq = ?",
                       {id, static_cast<std::int64_t>(seq)});
    if (r.empty()) break;
    out += r.str(0, "data");
  }
  return out;
}

bool FileStore::remove(const std::string& name) {
  bool removed = false;
  db_.transaction([&](core::DbSession& s) {
    auto r = s.query("SELECT id FROM bat_file WHERE name = ? FOR UPDATE", {name});
    if (r.empty()) return;
    auto inUse = s.query("SELECT id FROM bat_job WHERE file_id = ? AND status IN ('pending','running') LIMIT 1",
                         {r.num(0, "id")});
    if (!inUse.empty())
      throw AdminError(409, "file_in_use",
                       "'" + name + "' is the file of job " + inUse.str(0, "id") +
                           ", which has not ended (impctl bat job cancel " + inUse.str(0, "id") + ")");
    removed = s.exec("DELETE FROM bat_file WHERE id = ?", {r.num(0, "id")}) > 0;
  });
  return removed;
}

std::string_view nameOf(JobStatus s) {
  switch (s) {
    case JobStatus::Pending: return "pending";
    case JobStatus::Running: return "running";
    case JobStatus::Completed: return "completed";
    case JobStatus::Failed: return "failed";
    case JobStatus::Cancelled: return "cancelled";
  }
  return "failed";
}

std::optional<JobStatus> jobStatusOf(std::string_view s) {
  for (auto st : {JobStatus::Pending, JobStatus::Running, JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled})
    if (nameOf(st) == s) return st;
  return std::nullopt;
}

JobInfo JobStore::create(JobKind kind, const std::string& fileName, const std::string& runAt) {
  std::string when;
  if (!runAt.empty()) {
    when = canonicalTime(runAt);
    if (when.empty())
      throw AdminError(400, "invalid_time", "run at '" + runAt + "' is not YYYY-MM-DD HH:MM[:SS] (UTC)");
  }
  std::int64_t id = 0;
  db_.transaction([&](core::DbSession& s) {
    auto f = s.query("SELECT id, kind, complete FROM bat_file WHERE name = ? FOR UPDATE", {fileName});
    if (f.empty()) throw noFile(fileName);
    if (f.num(0, "complete") == 0)
      throw AdminError(409, "file_incomplete", "'" + fileName + "' is still being uploaded");
    const auto fileKind = jobKindOf(f.str(0, "kind")).value_or(JobKind::Import);
    if (fileKind != kind)
      throw AdminError(400, "wrong_file_type",
                       "'" + fileName + "' is a " + std::string(targetOf(fileKind)) + " / " +
                           std::string(transactionOf(fileKind)) + " file; a " + std::string(nameOf(kind)) +
                           " job needs a " + std::string(targetOf(kind)) + " / " + std::string(transactionOf(kind)) +
                           " file");
    if (!when.empty()) {
      auto past = s.query("SELECT ? < UTC_TIMESTAMP() - INTERVAL 1 MINUTE AS past", {when});
      if (past.num(0, "past") != 0)
        throw AdminError(400, "time_in_the_past", "run at " + when + " UTC is in the past; omit --at to run now");
    }
    s.exec("INSERT INTO bat_job (kind, file_id, file_name, status, run_at, created_at) VALUES (?, ?, ?, 'pending', ?, "
           "UTC_TIMESTAMP(3))",
           {std::string(nameOf(kind)), f.num(0, "id"), fileName,
            when.empty() ? core::SqlValue(nullptr) : core::SqlValue(when)});
    id = static_cast<std::int64_t>(s.lastInsertId());
  });
  return *get(id);
}

std::optional<JobInfo> JobStore::get(std::int64_t id) {
  auto r = db_.query("SELECT " + jobColumns() + " FROM bat_job WHERE id = ?", {id});
  if (r.empty()) return std::nullopt;
  return jobRow(r, 0);
}

std::vector<JobInfo> JobStore::list(std::size_t limit) {
  auto r = db_.query("SELECT " + jobColumns() + " FROM bat_job ORDER BY id DESC LIMIT ?",
                     {static_cast<std::int64_t>(limit)});
  std::vector<JobInfo> out;
  for (std::size_t i = 0; i < r.size(); ++i) out.push_back(jobRow(r, i));
  return out;
}

JobInfo JobStore::cancel(std::int64_t id) {
  db_.transaction([&](core::DbSession& s) {
    auto r = s.query("SELECT status FROM bat_job WHERE id = ? FOR UPDATE", {id});
    if (r.empty()) throw noJob(id);
    const auto st = r.str(0, "status");
    if (st == "pending")
      s.exec("UPDATE bat_job SET status = 'cancelled', ended_at = UTC_TIMESTAMP(3), detail = 'cancelled before it "
             "started', not_processed = rows_total WHERE id = ?",
             {id});
    else if (st == "running")
      s.exec("UPDATE bat_job SET cancel_requested = TRUE WHERE id = ?", {id});
    else
      throw AdminError(409, "job_ended", "job " + std::to_string(id) + " has ended (" + st + ")");
  });
  return *get(id);
}

std::vector<JobEntry> JobStore::entries(std::int64_t id) {
  auto r = db_.query("SELECT kind, line, text FROM bat_job_entry WHERE job_id = ? ORDER BY seq", {id});
  std::vector<JobEntry> out;
  out.reserve(r.size());
  for (std::size_t i = 0; i < r.size(); ++i)
    out.push_back({r.str(i, "kind"), static_cast<std::uint64_t>(r.num(i, "line")), r.str(i, "text")});
  return out;
}

std::optional<JobInfo> JobStore::claimDue(const std::string& nodeId) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = db_.query(
        "SELECT id FROM bat_job WHERE status = 'pending' AND (run_at IS NULL OR run_at <= UTC_TIMESTAMP(3)) "
        "ORDER BY COALESCE(run_at, created_at), id LIMIT 1");
    if (r.empty()) return std::nullopt;
    const auto id = r.num(0, "id");
    // Another node's scheduler may take it first: only one UPDATE wins.
    if (db_.exec("UPDATE bat_job SET status = 'running', node_id = ?, started_at = UTC_TIMESTAMP(3) WHERE id = ? AND "
                 "status = 'pending'",
                 {nodeId, id}) == 1)
      return get(id);
  }
  return std::nullopt;
}

std::vector<JobInfo> JobStore::runningOn(const std::string& nodeId) {
  auto r = db_.query("SELECT " + jobColumns() + " FROM bat_job WHERE status = 'running' AND node_id = ? ORDER BY id",
                     {nodeId});
  std::vector<JobInfo> out;
  for (std::size_t i = 0; i < r.size(); ++i) out.push_back(jobRow(r, i));
  return out;
}

std::optional<double> JobStore::secondsToNext() {
  auto r = db_.query(
      "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(3), MIN(run_at)) AS us FROM bat_job WHERE status = 'pending' "
      "AND run_at IS NOT NULL");
  if (r.empty() || !r.get(0, "us")) return std::nullopt;
  return static_cast<double>(r.num(0, "us")) / 1e6;
}

bool JobStore::cancelAsked(core::DbSession& s, std::int64_t id) {
  auto r = s.query("SELECT cancel_requested FROM bat_job WHERE id = ? FOR UPDATE", {id});
  return !r.empty() && r.num(0, "cancel_requested") != 0;
}

void JobStore::addEntries(core::DbSession& s, std::int64_t id, std::uint64_t firstSeq,
                          const std::vector<JobEntry>& e) {
  // Multi-row inserts of up to 64 entries: few round trips, few statement texts.
  std::size_t i = 0;
  while (i < e.size()) {
    const std::size_t n = e.size() - i >= 64 ? 64 : e.size() - i >= 8 ? 8 : 1;
    std::string sql = "INSERT INTO bat_job_entry (job_id, seq, kind, line, text) VALUES ";
    core::SqlParams p;
    for (std::size_t k = 0; k < n; ++k) {
      sql += k ? ", (?, ?, ?, ?, ?)" : "(?, ?, ?, ?, ?)";
      const auto& x = e[i + k];
      std::string text = x.text.size() > 2000 ? x.text.substr(0, 2000) + "..." : x.text;
      p.insert(p.end(), {id, static_cast<std::int64_t>(firstSeq + i + k), x.kind, static_cast<std::int64_t>(x.line),
                         std::move(text)});
    }
    s.exec(sql, p);
    i += n;
  }
}

void JobStore::checkpoint(core::DbSession& s, const JobInfo& j) {
  auto n = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
  s.exec("UPDATE bat_job SET rows_done = ?, ck_offset = ?, ck_line = ?, applied = ?, ignored = ?, internal_errors = ?,"
         " lists_failed = ?, retrieved = ?, notified = ?, not_notified = ? WHERE id = ?",
         {n(j.rowsDone), n(j.checkpointOffset), n(j.checkpointLine), n(j.counts.applied), n(j.counts.ignored),
          n(j.counts.internalErrors), n(j.counts.listsFailed), n(j.counts.retrieved), n(j.counts.notified),
          n(j.counts.notNotified), j.id});
}

void JobStore::finish(core::DbSession& s, const JobInfo& j) {
  checkpoint(s, j);
  s.exec("UPDATE bat_job SET status = ?, detail = ?, not_processed = ?, ended_at = UTC_TIMESTAMP(3) WHERE id = ?",
         {std::string(nameOf(j.status)), j.detail.substr(0, 1000), static_cast<std::int64_t>(j.counts.notProcessed),
          j.id});
}

void JobStore::fail(std::int64_t id, const std::string& why) {
  db_.exec("UPDATE bat_job SET status = 'failed', detail = ?, not_processed = rows_total - rows_done, ended_at = "
           "UTC_TIMESTAMP(3) WHERE id = ? AND status = 'running'",
           {("ended early: " + why).substr(0, 1000), id});
}

std::uint64_t JobStore::entryCount(std::int64_t id) {
  auto r = db_.query("SELECT COALESCE(MAX(seq), 0) AS n FROM bat_job_entry WHERE job_id = ?", {id});
  return static_cast<std::uint64_t>(r.num(0, "n"));
}

void JobStore::setTotal(std::int64_t id, std::uint64_t rows) {
  db_.exec("UPDATE bat_job SET rows_total = ? WHERE id = ?", {static_cast<std::int64_t>(rows), id});
}

}  // namespace imp::bat
