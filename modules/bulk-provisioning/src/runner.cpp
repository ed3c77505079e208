#include "imp/bulk_provisioning/runner.h"

#include <imp/core/database.h>
#include <imp/directory/directory.h>
#include <imp/directory/routing.h>
#include <imp/sip_proxy/config_store.h>
#include <imp/sip_proxy/routing.h>
#include <imp/xcp_router/presence_settings.h>
#include <imp/xcp_router/roster_store.h>
#include <imp/xcp_router/service.h>
#include <imp/xcp_router/store_errors.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "imp/bulk_provisioning/csv.h"
#include "imp/bulk_provisioning/rows.h"

namespace imp::bat {

namespace {

using Clock = std::chrono::steady_clock;

std::string lineText(std::uint64_t line) { return "line " + std::to_string(line); }

// The job's end: its status, what the log says first, and the rows left.
void endJob(const RunnerContext& ctx, JobInfo& job, JobStatus status, std::string detail, std::uint64_t left) {
  job.status = status;
  job.detail = std::move(detail);
  job.counts.notProcessed = left;
  ctx.db->transaction([&](core::DbSession& s) { JobStore::finish(s, job); });
  if (ctx.onEnd) ctx.onEnd(status);
}

// Records and problems after `from` (the rows the job has, or has left).
std::uint64_t countItems(std::string_view text, CsvReader::Position from) {
  CsvReader r(text);
  r.seek(from);
  std::uint64_t n = 0;
  while (r.next()) ++n;
  return n;
}

struct Owner {
  std::string reason;  // "" = may own imported contacts
  std::string userid, jid;
};

struct Contact {
  std::string reason;  // "" = may be a contact
  std::string userid;  // a local IMP user's id; "" for a Microsoft or federated user
};

// What a job needs from the directory and the routing configuration, asked
// once per owner and per contact.
class Resolver {
 public:
  explicit Resolver(core::Database& db) : dir_(db), lookup_(directory::directoryLookup(dir_)) {
    sip_proxy::ConfigStore cfg(db);
    federation_ = cfg.federation().settings;
    routes_ = cfg.routeTable();
    auto nodes = db.query("SELECT node_id FROM core_node");
    for (std::size_t i = 0; i < nodes.size(); ++i) nodes_.insert(nodes.str(i, "node_id"));
  }

  const Owner& owner(const std::string& id, const std::string& domain) {
    auto key = id + '\n' + domain;
    auto it = owners_.find(key);
    if (it != owners_.end()) return it->second;
    Owner o;
    auto u = dir_.user(id);
    if (!u) {
      o.reason = "owner '" + id + "' is not a user of this cluster";
    } else if (!u->licensed) {
      o.reason = "owner '" + id + "' is not licensed for IM and Presence";
    } else if (u->homeNode.empty()) {
      o.reason = "owner '" + id + "' is not assigned to a node";
    } else if (!nodes_.count(u->homeNode)) {
      o.reason = "owner '" + id + "' is homed on node '" + u->homeNode + "', which is not in this cluster";
    } else {
      auto at = u->imAddress.find('@');
      auto userDomain = at == std::string::npos ? std::string() : u->imAddress.substr(at + 1);
      if (userDomain != domain)
        o.reason = "owner '" + id + "' has the IM address " + u->imAddress + ", not one in " + domain;
      o.userid = u->userid;
      o.jid = u->imAddress;
    }
    return owners_.emplace(std::move(key), std::move(o)).first->second;
  }

  // The IM address of user `userid` ("" if it is gone), asked once per job.
  const std::string& jidOf(const std::string& userid) {
    auto it = jids_.find(userid);
    if (it != jids_.end()) return it->second;
    auto u = dir_.user(userid);
    return jids_.emplace(userid, u ? u->imAddress : std::string()).first->second;
  }

  const Contact& contact(const std::string& jid) {
    auto it = contacts_.find(jid);
    if (it != contacts_.end()) return it->second;
    Contact c;
    auto r = directory::recipientFromAddress(jid);
    if (!r) {
      c.reason = "contact '" + jid + "' is not user@domain";
    } else {
      auto d = sip_proxy::decideRoute(*r, federation_, *lookup_, routes_, false, directory::Reasons::RejectsOnly);
      switch (d.kind) {
        case directory::RouteKind::LocalUser:
          if (auto u = dir_.userByAddress(jid)) c.userid = u->userid;
          else c.reason = "contact '" + jid + "' was not found in the directory";
          break;
        case directory::RouteKind::MicrosoftServer:
        case directory::RouteKind::StaticRoute:
          break;
        case directory::RouteKind::Reject:
          c.reason = "contact '" + jid + "' cannot be reached: " + d.reason;
          break;
      }
    }
    return contacts_.emplace(jid, std::move(c)).first->second;
  }

 private:
  directory::Directory dir_;
  std::unique_ptr<directory::DirectoryLookup> lookup_;
  sip_proxy::FederationSettings federation_;
  sip_proxy::RouteTable routes_{std::vector<sip_proxy::StaticRoute>{}};
  std::set<std::string> nodes_;
  std::unordered_map<std::string, Owner> owners_;
  std::unordered_map<std::string, Contact> contacts_;
  std::unordered_map<std::string, std::string> jids_;
};

// Rename records per transaction: one record may rewrite thousands of lists.
constexpr std::size_t kRenameRecordsPerTransaction = 100;

// One record of a rename batch.
struct RenameRecord {
  std::uint64_t line = 0;
  std::string ignored;  // why it is not applied, or ""
  RenameRow row;
  CsvReader::Position next;  // where the record after it starts
};

// One row of a batch: what it became before the transaction.
struct Row {
  std::uint64_t line = 0;
  std::string ignored;  // the reason, or "" when it goes to the roster store
  std::size_t contact = 0;  // index into the batch's BulkContacts
};

// An import batch as read and checked, before its transaction.
struct ImportBatch {
  std::vector<Row> rows;
  std::vector<xcp::BulkContact> contacts;
  CsvReader::Position end;  // where the row after the batch starts
};

class Job {
 public:
  Job(const RunnerContext& ctx, JobInfo job) : ctx_(ctx), db_(*ctx.db), job_(std::move(job)), jobs_(db_) {}

  void run() {
    if (!job_.fileId) return endJob(ctx_, job_, JobStatus::Failed, "the job's file '" + job_.fileName + "' was deleted", 0);
    FileStore files(db_);
    text_ = files.content(*job_.fileId);
    CsvReader reader(text_);
    auto first = reader.next();
    std::string headerProblem;
    if (!first) headerProblem = "the file is empty";
    else if (auto* p = std::get_if<CsvProblem>(&*first)) headerProblem = "the header line cannot be read: " + p->reason;
    else headerProblem = checkHeader(job_.kind, std::get<CsvRecord>(*first).fields);
    if (!headerProblem.empty()) {
      const auto left = countItems(text_, reader.position());
      jobs_.setTotal(job_.id, left);
      job_.rowsTotal = left;
      if (ctx_.log) ctx_.log->warn("bulk job {} failed: {}", job_.id, headerProblem);
      return endJob(ctx_, job_, JobStatus::Failed, headerProblem, left);
    }
    const auto body = reader.position();
    if (job_.rowsTotal == 0) {
      job_.rowsTotal = countItems(text_, body);
      jobs_.setTotal(job_.id, job_.rowsTotal);
    }
    nextSeq_ = jobs_.entryCount(job_.id) + 1;
    const bool resumed = job_.checkpointOffset > body.offset;
    if (resumed) {
      if (job_.kind == JobKind::Import) rememberPairs(body, {job_.checkpointOffset, job_.checkpointLine});
      reader.seek({job_.checkpointOffset, job_.checkpointLine});
      if (ctx_.log)
        ctx_.log->info("bulk job {} resumes at line {} ({} of {} rows done)", job_.id, job_.checkpointLine,
                       job_.rowsDone, job_.rowsTotal);
    } else if (ctx_.log) {
      ctx_.log->info("bulk job {} ({} {}): {} rows", job_.id, nameOf(job_.kind), job_.fileName, job_.rowsTotal);
    }
    resolver_ = std::make_unique<Resolver>(db_);
    limits_ = xcp::PresenceSettingsStore(db_).get();
    started_ = Clock::now();
    doneAtStart_ = job_.rowsDone;
    // Declared after the reader: a return waits for the batch being read.
    std::future<ImportBatch> ahead;
    for (;;) {
      if (ctx_.stopping && ctx_.stopping()) {
        if (ctx_.log) ctx_.log->info("bulk job {} stops at line {}; it resumes when the service starts", job_.id, job_.checkpointLine);
        return;
      }
      const std::uint64_t rate = ctx_.rowsPerSecond ? ctx_.rowsPerSecond() : 0;
      std::size_t n = ctx_.batchRows;
      if (rate > 0) n = std::max<std::size_t>(1, std::min<std::size_t>(n, static_cast<std::size_t>(rate / 5)));
      bool more = false;
      if (job_.kind == JobKind::Import) {
        // The next batch is read and checked while this one's transaction
        // runs (the database and impd each keep a CPU busy).
        ImportBatch batch = ahead.valid() ? ahead.get() : readImportBatch(reader, n);
        if (!batch.rows.empty()) {
          ahead = std::async(std::launch::async, [this, &reader, n] { return readImportBatch(reader, n); });
          more = importBatch(batch);
        }
      } else {
        more = renameBatch(reader, n);
      }
      if (ended_) return;
      if (!more) break;
      if (rate > 0 && ctx_.pause) {
        // The import rate (MG-3): rows since this run started at `rate` per second.
        const double due = static_cast<double>(job_.rowsDone - doneAtStart_) / static_cast<double>(rate);
        const double spent = std::chrono::duration<double>(Clock::now() - started_).count();
        if (due > spent) ctx_.pause(due - spent);
      }
    }
    std::string detail = job_.kind == JobKind::Import
                             ? std::to_string(job_.counts.applied) + " contact(s) imported, " +
                                   std::to_string(job_.counts.ignored) + " ignored, " +
                                   std::to_string(job_.counts.internalErrors) + " internal error(s)"
                             : std::to_string(job_.counts.applied) + " contact list(s) updated, " +
                                   std::to_string(job_.counts.listsFailed) + " failed, " +
                                   std::to_string(job_.counts.ignored) + " record(s) ignored";
    endJob(ctx_, job_, JobStatus::Completed, detail, 0);
    if (ctx_.log) ctx_.log->info("bulk job {} completed: {}", job_.id, detail);
  }

 private:
  // The pairs of the rows before the checkpoint (a resumed job still knows
  // a later row for a duplicate).
  void rememberPairs(CsvReader::Position from, CsvReader::Position to) {
    CsvReader r(text_);
    r.seek(from);
    while (r.position().offset < to.offset) {
      auto item = r.next();
      if (!item) break;
      if (auto* rec = std::get_if<CsvRecord>(&*item)) {
        auto row = parseContactRow(rec->fields);
        if (auto* c = std::get_if<ContactRow>(&row)) seen_.emplace(pairKey(*c), rec->line);
      }
    }
  }

  static std::string pairKey(const ContactRow& c) { return c.ownerId + '\n' + c.ownerDomain + '\n' + c.contact; }

  void entry(std::vector<JobEntry>& out, const char* kind, std::uint64_t line, std::string text) {
    out.push_back({kind, line, lineText(line) + ": " + std::move(text)});
  }

  // True if the job may go on; false after a cancel (ended_ is set).
  bool commit(const std::function<void(core::DbSession&)>& apply, const JobInfo& after,
              const std::vector<JobEntry>& entries) {
    bool cancelled = false;
    db_.transaction([&](core::DbSession& s) {
      cancelled = JobStore::cancelAsked(s, job_.id);
      if (cancelled) return;
      apply(s);
      JobStore::addEntries(s, job_.id, nextSeq_, entries);
      JobStore::checkpoint(s, after);
    });
    if (cancelled) {
      const auto left = job_.rowsTotal > job_.rowsDone ? job_.rowsTotal - job_.rowsDone : 0;
      endJob(ctx_, job_, JobStatus::Cancelled, "cancelled by the administrator at line " +
                                                  std::to_string(job_.checkpointLine), left);
      if (ctx_.log) ctx_.log->info("bulk job {} cancelled; {} row(s) not processed", job_.id, left);
      ended_ = true;
      return false;
    }
    nextSeq_ += entries.size();
    if (ctx_.onBatch)
      ctx_.onBatch(job_.kind, after.counts.applied - job_.counts.applied, after.counts.ignored - job_.counts.ignored,
                   after.counts.internalErrors - job_.counts.internalErrors);
    job_ = after;
    return true;
  }

  // A database failure that is not a lost connection or a conflict ends the
  // job, with the rows it did not reach counted (MG-7 "not processed").
  void fail(const std::string& why) {
    const auto left = job_.rowsTotal > job_.rowsDone ? job_.rowsTotal - job_.rowsDone : 0;
    if (ctx_.log) ctx_.log->error("bulk job {} failed at line {}: {}", job_.id, job_.checkpointLine, why);
    try {
      endJob(ctx_, job_, JobStatus::Failed, "ended early at line " + std::to_string(job_.checkpointLine) + ": " + why,
             left);
    } catch (const std::exception& e) {
      if (ctx_.log) ctx_.log->error("bulk job {}: its end cannot be recorded ({}); it resumes at the next start", job_.id, e.what());
    }
    ended_ = true;
  }

  // Reads and checks up to n rows (the directory and routing lookups
  // included): the job's reading side, which runs beside the transaction
  // of the batch before (run()). It alone touches the reader, the resolver
  // and the pairs seen.
  ImportBatch readImportBatch(CsvReader& reader, std::size_t n) {
    ImportBatch b;
    auto& rows = b.rows;
    auto& contacts = b.contacts;
    while (rows.size() < n) {
      auto item = reader.next();
      if (!item) break;
      Row row;
      if (auto* p = std::get_if<CsvProblem>(&*item)) {
        row.line = p->line;
        row.ignored = p->reason;
      } else {
        const auto& rec = std::get<CsvRecord>(*item);
        row.line = rec.line;
        row.ignored = checkImportRow(rec, contacts);
        if (row.ignored.empty()) row.contact = contacts.size() - 1;
      }
      rows.push_back(std::move(row));
    }
    b.end = reader.position();
    return b;
  }

  // Applies a batch read by readImportBatch(): one transaction with its log
  // entries and the checkpoint after its last row. False when the job
  // ended (cancel, failure).
  bool importBatch(const ImportBatch& batch) {
    const auto& rows = batch.rows;
    const auto& contacts = batch.contacts;
    JobInfo after = job_;
    after.rowsDone += rows.size();
    after.checkpointOffset = batch.end.offset;
    after.checkpointLine = batch.end.line;
    std::vector<xcp::BulkResult> results;
    std::vector<JobEntry> entries;
    auto tally = [&] {
      entries.clear();
      after.counts = job_.counts;
      for (const auto& r : rows) {
        if (!r.ignored.empty()) {
          ++after.counts.ignored;
          entry(entries, "ignored", r.line, r.ignored);
          continue;
        }
        const auto& res = results[r.contact];
        const auto& c = contacts[r.contact];
        switch (res.outcome) {
          case xcp::BulkOutcome::Imported:
            ++after.counts.applied;
            break;
          case xcp::BulkOutcome::AlreadyPresent:
            ++after.counts.ignored;
            entry(entries, "ignored", r.line, c.contact + " is already in the contact list of " + c.owner);
            break;
          case xcp::BulkOutcome::ContactLimit:
            ++after.counts.ignored;
            entry(entries, "ignored", r.line,
                  "the contact list of " + c.owner + " is full (" + std::to_string(res.limit) +
                      " contacts, PS-1)");
            break;
          case xcp::BulkOutcome::WatcherLimit:
            ++after.counts.ignored;
            entry(entries, "ignored", r.line,
                  c.contact + " has the most watchers allowed (" + std::to_string(res.limit) + ", PS-1)");
            break;
          case xcp::BulkOutcome::ContactSideLimit:
            ++after.counts.ignored;
            entry(entries, "ignored", r.line,
                  "the contact list of " + c.contact + " is full (" + std::to_string(res.limit) +
                      " contacts, PS-1): it cannot hold " + c.ownerJid + " as a watcher");
            break;
        }
      }
    };
    try {
      if (!commit([&](core::DbSession& s) {
            results = xcp::RosterStore(db_).importContacts(s, contacts, limits_);
            tally();
          },
                  after, entries))
        return false;
    } catch (const core::DbError& e) {
      if (e.connectionLost() || e.transactionConflict()) {
        fail("the database did not answer: " + std::string(e.what()));
        return false;
      }
      // One row the database refuses must not cost the batch: each row on
      // its own, the one that fails counted as an internal error.
      return importRowByRow(rows, contacts, after, e.what());
    } catch (const xcp::StoreInputError& e) {
      // A row the roster store refuses (checked here first; its own checks
      // are the last word): each row on its own, that one ignored.
      return importRowByRow(rows, contacts, after, e.what());
    }
    notifyImported(contacts, results);
    return true;
  }

  bool importRowByRow(const std::vector<Row>& rows, const std::vector<xcp::BulkContact>& contacts, JobInfo after,
                      const std::string& batchError) {
    if (ctx_.log) ctx_.log->warn("bulk job {}: a batch failed ({}); its rows go one by one", job_.id, batchError);
    std::vector<JobEntry> entries;
    after.counts = job_.counts;
    std::vector<xcp::BulkContact> done;
    std::vector<xcp::BulkResult> doneResults;
    for (const auto& r : rows) {
      if (!r.ignored.empty()) {
        ++after.counts.ignored;
        entry(entries, "ignored", r.line, r.ignored);
        continue;
      }
      try {
        std::vector<xcp::BulkResult> one;
        db_.transaction([&](core::DbSession& s) { one = xcp::RosterStore(db_).importContacts(s, {contacts[r.contact]}, limits_); });
        if (one.at(0).outcome == xcp::BulkOutcome::Imported) {
          ++after.counts.applied;
          done.push_back(contacts[r.contact]);
          doneResults.push_back(one[0]);
        } else {
          ++after.counts.ignored;
          entry(entries, "ignored", r.line, contacts[r.contact].contact + " was not imported (limit or already present)");
        }
      } catch (const xcp::StoreInputError& e) {
        ++after.counts.ignored;
        entry(entries, "ignored", r.line, contacts[r.contact].contact + ": " + e.what());
      } catch (const std::exception& e) {
        ++after.counts.internalErrors;
        entry(entries, "error", r.line, "internal error: " + std::string(e.what()));
      }
    }
    try {
      if (!commit([](core::DbSession&) {}, after, entries)) return false;
    } catch (const std::exception& e) {
      fail(e.what());
      return false;
    }
    notifyImported(done, doneResults);
    return true;
  }

  std::string checkImportRow(const CsvRecord& rec, std::vector<xcp::BulkContact>& out) {
    auto parsed = parseContactRow(rec.fields);
    if (auto* why = std::get_if<std::string>(&parsed)) return *why;
    auto& row = std::get<ContactRow>(parsed);
    auto [it, fresh] = seen_.emplace(pairKey(row), rec.line);
    if (!fresh) return "duplicate of " + lineText(it->second) + " (" + row.ownerId + " -> " + row.contact + ")";
    const auto& owner = resolver_->owner(row.ownerId, row.ownerDomain);
    if (!owner.reason.empty()) return owner.reason;
    if (row.contact == owner.jid) return "a user cannot be a contact of their own (" + owner.jid + ")";
    const auto& contact = resolver_->contact(row.contact);
    if (!contact.reason.empty()) return contact.reason;
    xcp::BulkContact c;
    c.owner = owner.userid;
    c.ownerJid = owner.jid;
    c.contact = row.contact;
    c.contactUser = contact.userid;
    c.name = row.nickname;
    if (!row.group.empty()) c.groups.push_back(row.group);
    out.push_back(std::move(c));
    return {};
  }

  // After the commit: roster pushes to those online and probes for the
  // presence each owner now watches.
  void notifyImported(const std::vector<xcp::BulkContact>& contacts, const std::vector<xcp::BulkResult>& results) {
    if (!ctx_.xmpp) return;
    std::unordered_set<std::string> notified, missed;
    for (std::size_t i = 0; i < contacts.size() && i < results.size(); ++i) {
      const auto& r = results[i];
      if (r.outcome != xcp::BulkOutcome::Imported) continue;
      const auto& c = contacts[i];
      bool ownerOnline = false;
      if (r.ownerItem) {
        ownerOnline = ctx_.xmpp->pushRoster(c.ownerJid, {*r.ownerItem}, r.ownerVersion);
        (ownerOnline ? notified : missed).insert(c.ownerJid);
      }
      if (r.contactItem) {
        bool on = ctx_.xmpp->pushRoster(c.contact, {*r.contactItem}, r.contactVersion);
        (on ? notified : missed).insert(c.contact);
      }
      // A Microsoft or federated contact: its subscription starts now (the
      // federation connection manager paces the SUBSCRIBEs); a local one is
      // probed only for an owner who is online (at login the session
      // manager probes every contact).
      if (c.contactUser.empty() || ownerOnline) ctx_.xmpp->probe(c.ownerJid, c.contact);
    }
    // Counted in the next checkpoint (or the job's end).
    job_.counts.notified += notified.size();
    for (const auto& u : missed) job_.counts.notNotified += notified.count(u) ? 0 : 1;
  }

  // Up to n records (kRenameRecordsPerTransaction at most) in one
  // transaction, each applied after the ones before it (a file may rename
  // A to B and then B to C). When the database refuses one, the records go
  // again one per transaction, the one refused counted as an internal error.
  bool renameBatch(CsvReader& reader, std::size_t n) {
    std::vector<RenameRecord> recs;
    while (recs.size() < std::min(n, kRenameRecordsPerTransaction)) {
      auto item = reader.next();
      if (!item) break;
      RenameRecord rec;
      if (auto* p = std::get_if<CsvProblem>(&*item)) {
        rec.line = p->line;
        rec.ignored = p->reason;
      } else {
        const auto& csv = std::get<CsvRecord>(*item);
        rec.line = csv.line;
        auto parsed = parseRenameRow(csv.fields);
        if (auto* why = std::get_if<std::string>(&parsed)) rec.ignored = *why;
        else rec.row = std::get<RenameRow>(parsed);
      }
      rec.next = reader.position();
      recs.push_back(std::move(rec));
    }
    if (recs.empty()) return false;
    std::string why;
    try {
      return renameRecords(recs, 0, recs.size());
    } catch (const core::DbError& e) {
      if (e.connectionLost() || e.transactionConflict()) {
        fail("the database did not answer: " + std::string(e.what()));
        return false;
      }
      why = e.what();
    }
    if (recs.size() > 1 && ctx_.log)
      ctx_.log->warn("bulk job {}: a rename batch failed ({}); its records go one by one", job_.id, why);
    for (std::size_t i = 0; i < recs.size(); ++i) {
      if (recs.size() > 1) {
        try {
          if (!renameRecords(recs, i, i + 1)) return false;
          continue;
        } catch (const core::DbError& e) {
          if (e.connectionLost() || e.transactionConflict()) {
            fail("the database did not answer: " + std::string(e.what()));
            return false;
          }
          why = e.what();
        }
      }
      JobInfo after = job_;
      after.rowsDone += 1;
      after.checkpointOffset = recs[i].next.offset;
      after.checkpointLine = recs[i].next.line;
      ++after.counts.internalErrors;
      std::vector<JobEntry> err;
      entry(err, "error", recs[i].line, "internal error renaming " + recs[i].row.from + ": " + why);
      try {
        if (!commit([](core::DbSession&) {}, after, err)) return false;
      } catch (const std::exception& e2) {
        fail(e2.what());
        return false;
      }
    }
    return true;
  }

  // Records [b, e) in one transaction; false when the job ends (cancel).
  // A DbError is the caller's.
  bool renameRecords(const std::vector<RenameRecord>& recs, std::size_t b, std::size_t e) {
    JobInfo after = job_;
    after.rowsDone += e - b;
    after.checkpointOffset = recs[e - 1].next.offset;
    after.checkpointLine = recs[e - 1].next.line;
    std::vector<JobEntry> entries;
    std::vector<xcp::RenameResult> results;
    try {
      if (!commit([&](core::DbSession& s) {
            entries.clear();
            results.clear();
            after.counts = job_.counts;
            xcp::RosterStore store(db_);
            for (auto i = b; i < e; ++i) {
              const auto& rec = recs[i];
              if (!rec.ignored.empty()) {
                ++after.counts.ignored;
                entry(entries, "ignored", rec.line, rec.ignored);
                continue;
              }
              auto result = store.renameContact(s, rec.row.from, rec.row.to);
              after.counts.retrieved += result.changed.size() + result.alreadyHadNew.size();
              after.counts.applied += result.changed.size();
              after.counts.listsFailed += result.alreadyHadNew.size();
              if (result.changed.empty() && result.alreadyHadNew.empty()) {
                ++after.counts.ignored;
                entry(entries, "ignored", rec.line, "unknown ID: no contact list holds " + rec.row.from);
              }
              for (const auto& owner : result.alreadyHadNew)
                entry(entries, "ignored", rec.line,
                      "the contact list of " + owner + " already holds " + rec.row.to + "; " + rec.row.from +
                          " is left in it");
              results.push_back(std::move(result));
            }
          },
                  after, entries))
        return false;
    } catch (const xcp::StoreInputError& refused) {
      // parseRenameRow() checks what the store checks: a refusal here is a
      // fault, counted like one the database makes.
      throw core::DbError(refused.what(), 0, false);
    }
    if (ctx_.xmpp)
      for (const auto& result : results) notifyRenamed(result);
    return true;
  }

  // After the commit: block lists reloaded, roster pushes to those online
  // and the new ID's presence (a Microsoft contact: a SUBSCRIBE to it).
  void notifyRenamed(const xcp::RenameResult& result) {
    for (const auto& owner : result.blockOwners) {
      const auto& jid = resolver_->jidOf(owner);
      if (!jid.empty()) ctx_.xmpp->reloadBlockList(jid);
    }
    for (const auto& ch : result.changed) {
      const auto& ownerJid = resolver_->jidOf(ch.owner);
      if (ownerJid.empty()) continue;
      const bool on = ctx_.xmpp->pushRoster(ownerJid, {ch.removedOld, ch.added}, ch.version);
      ++(on ? job_.counts.notified : job_.counts.notNotified);
      // A Microsoft or federated old ID's subscriptions end (federation-cm:
      // SUBSCRIBE with Expires 0, rather than a dialog left to expire); a
      // local user's are that user's roster, which a contact ID rename does
      // not change. The new ID's start.
      if (resolver_->contact(ch.removedOld.contact).userid.empty())
        ctx_.xmpp->endSubscriptions(ownerJid, ch.removedOld);
      ctx_.xmpp->probe(ownerJid, ch.added.contact);
    }
  }

  const RunnerContext& ctx_;
  core::Database& db_;
  JobInfo job_;
  JobStore jobs_;
  std::string text_;
  std::unique_ptr<Resolver> resolver_;
  xcp::PresenceSettings limits_;
  std::unordered_map<std::string, std::uint64_t> seen_;  // owner/contact pair -> its first line
  std::uint64_t nextSeq_ = 1;
  Clock::time_point started_;
  std::uint64_t doneAtStart_ = 0;
  bool ended_ = false;
};

}  // namespace

void runJob(const RunnerContext& ctx, JobInfo job) {
  Job j(ctx, std::move(job));
  j.run();
}

}  // namespace imp::bat
