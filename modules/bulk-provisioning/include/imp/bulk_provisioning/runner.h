#pragma once
// Runs one bulk job from its checkpoint to its end (issue 18): reads the
// job's file, checks each row, and applies a batch of rows per database
// transaction together with the batch's log entries and the job's new
// checkpoint — so a job resumed after a crash applies every row exactly
// once (MG-7, MG-9, MG-10).
//
// Import (MG-7), per row: the header first (without it the job fails at
// once); CSV problems (unclosed quotes, wrong column count, bytes that are
// not UTF-8, empty lines) and each check below ignore the row with its
// reason and the job goes on:
//  - the owner exists, is licensed for IM, is homed on a node of this
//    cluster, and User Domain is the domain of its IM address;
//  - the contact is valid (RFC 7622) and not longer than the roster keeps;
//    it is not the owner; the same owner/contact pair came earlier in the
//    file (duplicate row);
//  - the routing decision (directory::decideRoute, the one the SIP proxy
//    and the router use) places the contact: a local user, a Microsoft user
//    of a local domain (partitioned federation), or a user of a federated
//    domain with a static route; otherwise its reason is given (FED-7);
//  - the contact-list and watcher limits (PS-1), and a contact already in
//    the list, are the roster store's (xcp-router) to decide in the
//    transaction.
// After a batch commits: roster pushes to owners (and local contacts) who
// are online, counted as users notified / not notified; a presence probe
// from the owner to each new contact the owner needs presence of now — a
// Microsoft contact's probe reaches the federation connection manager,
// which starts the outgoing SUBSCRIBE, paced by its recovery rate.
//
// Rename (MG-9), per record: both IDs valid; every contact list holding the
// old ID gets the new one (roster store; up to 100 records per transaction
// with their log and the checkpoint, each applied after the ones before it;
// when the database refuses the batch, one record per transaction and the
// refused one is an internal error); records processed / failed count
// contact lists.
//
// Rates: `rowsPerSecond()` (the import-rate service parameter, MG-3; 0 =
// unlimited) is read before each batch, so a change applies live.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "imp/bulk_provisioning/store.h"

namespace spdlog {
class logger;
}
namespace imp::core {
class Database;
}
namespace imp::xcp {
class XcpRuntime;
}

namespace imp::bat {

// Import rows per transaction by default: a batch's fixed costs (its users
// locked and their versions written, its log entries and checkpoint, the
// commit) spread over this many rows (B-BAT-IMPORT, docs/BENCHMARKS.md).
inline constexpr std::size_t kDefaultBatchRows = 20000;

struct RunnerContext {
  core::Database* db = nullptr;
  std::string nodeId;
  std::shared_ptr<xcp::XcpRuntime> xmpp;  // pushes and probes; may be null (tests)
  std::shared_ptr<spdlog::logger> log;
  std::function<std::uint64_t()> rowsPerSecond;  // 0 = unlimited
  // Returns true once the service stops: the job stops after its current
  // batch, left running (resumed at the next start).
  std::function<bool()> stopping;
  // Waits up to `seconds` or until stopping; the runner's only pause (the
  // import rate).
  std::function<void(double seconds)> pause;
  // Import rows per transaction (impd.conf [bulk-provisioning] batch_rows);
  // a rename takes at most 100 records per transaction.
  std::size_t batchRows = kDefaultBatchRows;
  // After each committed batch: the rows it applied, ignored and failed
  // (the service's metrics); after the job ended: its status. May be empty.
  std::function<void(JobKind, std::uint64_t applied, std::uint64_t ignored, std::uint64_t errors)> onBatch;
  std::function<void(JobStatus)> onEnd;
};

// Runs `job` (claimed: status running on this node). Returns when the job
// ended (completed, failed, cancelled) or the service stops.
void runJob(const RunnerContext& ctx, JobInfo job);

}  // namespace imp::bat
