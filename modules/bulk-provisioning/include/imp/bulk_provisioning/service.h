#pragma once
// The Bulk Provisioning Service (issue 18, MG-10): a scheduler thread that
// resumes the jobs this node was running when it stopped, then runs each
// pending job when it is due (now, or at its time), one at a time, claimed
// in the database so two nodes never run the same job. Jobs created through
// this node's admin API wake it at once; others (another node's API, a
// scheduled time) within a second.
//
// stop() lets the job in hand finish its batch and leaves it running in the
// database: the next start resumes it from its checkpoint.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <imp/core/service.h>

namespace imp::xcp {
class XcpRuntime;
}

namespace imp::core {
class ConfigSchema;
}

namespace imp::bat {

// What the service shares with the admin commands.
class BatRuntime {
 public:
  // A job was created or cancelled here: the scheduler looks now.
  void poke();
  // Waits for a poke, a stop or `seconds`.
  void wait(double seconds);
  void stopping(bool s);
  bool stopping() const { return stopping_.load(); }
  // The running job's id (0 = none), for `status`.
  std::atomic<std::int64_t> current{0};
  // MG-3: rows per second, 0 = unlimited (the service parameter import-rate).
  std::atomic<std::uint64_t> importRate{0};
  // Counted since the process started (metrics imp_bat_rows_total and
  // imp_bat_jobs_total): rows by job kind (import, rename) and result.
  std::atomic<std::uint64_t> applied[2] = {}, ignored[2] = {}, errors[2] = {};
  // Jobs ended: completed, failed, cancelled.
  std::atomic<std::uint64_t> ended[3] = {};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;
  std::atomic<bool> stopping_{false};
};

inline constexpr const char* kService = "bulk-provisioning";
inline constexpr const char* kImportRate = "import-rate";
inline constexpr const char* kBatchRows = "batch_rows";  // impd.conf [bulk-provisioning]

// Declares impd.conf's [bulk-provisioning] section (batch_rows).
void addOptions(core::ConfigSchema& s);

std::unique_ptr<core::Service> makeService(std::shared_ptr<xcp::XcpRuntime> xmpp, std::shared_ptr<BatRuntime> rt);

}  // namespace imp::bat
