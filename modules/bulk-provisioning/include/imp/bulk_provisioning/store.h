#pragma once
// The Bulk Provisioning Service's data (issue 18): uploaded files, jobs and
// their result logs in the cluster database (sql/0011_bulk_provisioning.sql),
// so any node lists and shows them (MG-10).
//
// Files arrive in parts (the admin API takes at most 1 MiB per request):
// begin() with the size and SHA-256 of the whole, put() each part in order,
// finish() checks the size and digest and makes the file usable. A file is
// for one kind of job; a job of the other kind refuses it.
//
// Errors: core::AdminError with the HTTP status and a message for the
// administrator (404 unknown, 409 conflict, 400 bad input); core::DbError
// from the database. Thread-safe, blocking (stateless over the database).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "imp/bulk_provisioning/rows.h"

namespace imp::core {
class Database;
class DbSession;
}  // namespace imp::core

namespace imp::bat {

inline constexpr std::size_t kPartBytes = 1 << 20;  // the largest part put() takes

struct FileInfo {
  std::int64_t id = 0;
  std::string name;
  JobKind kind = JobKind::Import;
  std::uint64_t size = 0;
  std::string sha256;
  std::uint64_t received = 0;
  bool complete = false;
  std::string uploadedAt;  // "YYYY-MM-DD HH:MM:SS" UTC
};

// A file name: 1..255 characters, no '/', no control characters, not "." or "..".
std::string checkFileName(const std::string& name);

class FileStore {
 public:
  explicit FileStore(core::Database& db) : db_(db) {}

  // Starts an upload; an incomplete file of the same name is replaced (an
  // upload that broke off), a complete one is a 409 unless `replace`.
  FileInfo begin(const std::string& name, JobKind kind, std::uint64_t size, const std::string& sha256, bool replace);
  // Part `seq` (0-based) of at most kPartBytes; parts come in order.
  FileInfo put(const std::string& name, std::uint32_t seq, const std::string& data);
  FileInfo finish(const std::string& name);
  std::vector<FileInfo> list();
  std::optional<FileInfo> info(const std::string& name);
  // Part `seq` of a complete file ("" past its end).
  std::string part(const std::string& name, std::uint32_t seq);
  // The whole content of file `id` (a job reads it once).
  std::string content(std::int64_t id);
  // Refused (409) while a pending or running job uses it.
  bool remove(const std::string& name);

 private:
  core::Database& db_;
};

enum class JobStatus { Pending, Running, Completed, Failed, Cancelled };
std::string_view nameOf(JobStatus s);
std::optional<JobStatus> jobStatusOf(std::string_view s);

struct JobCounts {
  std::uint64_t applied = 0;         // contacts imported / contact lists updated
  std::uint64_t ignored = 0;         // rows / rename records ignored
  std::uint64_t internalErrors = 0;
  std::uint64_t notProcessed = 0;
  std::uint64_t listsFailed = 0;     // rename: contact lists not updated
  std::uint64_t retrieved = 0;       // rename: contacts retrieved
  std::uint64_t notified = 0;
  std::uint64_t notNotified = 0;
};

struct JobInfo {
  std::int64_t id = 0;
  JobKind kind = JobKind::Import;
  std::string fileName;
  std::optional<std::int64_t> fileId;
  JobStatus status = JobStatus::Pending;
  std::string runAt, createdAt, startedAt, endedAt;  // UTC, "" when not set
  std::string nodeId;
  bool cancelRequested = false;
  std::string detail;
  std::uint64_t rowsTotal = 0, rowsDone = 0;
  std::uint64_t checkpointOffset = 0, checkpointLine = 1;
  JobCounts counts;
  double elapsedSeconds = 0;  // since started_at (to ended_at once ended)
};

struct JobEntry {
  std::string kind;  // "ignored" | "error" | "note"
  std::uint64_t line = 0;
  std::string text;
};

class JobStore {
 public:
  explicit JobStore(core::Database& db) : db_(db) {}

  // `runAt` "" = now, else "YYYY-MM-DD HH:MM[:SS]" UTC. The file must exist,
  // be complete and be for this kind of job (400 otherwise).
  JobInfo create(JobKind kind, const std::string& fileName, const std::string& runAt);
  std::optional<JobInfo> get(std::int64_t id);
  std::vector<JobInfo> list(std::size_t limit = 200);
  // A pending job ends at once; a running one at its next batch (its rows
  // left are counted as not processed); an ended one is a 409.
  JobInfo cancel(std::int64_t id);
  std::vector<JobEntry> entries(std::int64_t id);

  // The scheduler's side. The next due pending job, now running on
  // `nodeId`; nullopt when none is due.
  std::optional<JobInfo> claimDue(const std::string& nodeId);
  // Jobs this node was running when it stopped (resumed at start).
  std::vector<JobInfo> runningOn(const std::string& nodeId);
  // Seconds until the next scheduled pending job (nullopt: none).
  std::optional<double> secondsToNext();

  // Inside a batch's transaction: whether a cancel was asked (the row is
  // locked until the transaction ends).
  static bool cancelAsked(core::DbSession& s, std::int64_t id);
  static void addEntries(core::DbSession& s, std::int64_t id, std::uint64_t firstSeq, const std::vector<JobEntry>& e);
  // The checkpoint and the counts reached, with the batch.
  static void checkpoint(core::DbSession& s, const JobInfo& j);
  // Ends the job: status, detail, counts (not_processed included).
  static void finish(core::DbSession& s, const JobInfo& j);
  // Ends a running job as failed with `why`; its rows left not processed.
  void fail(std::int64_t id, const std::string& why);
  std::uint64_t entryCount(std::int64_t id);
  void setTotal(std::int64_t id, std::uint64_t rows);

 private:
  core::Database& db_;
};

}  // namespace imp::bat
