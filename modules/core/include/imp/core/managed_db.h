#pragma once
// Managed MariaDB (the embedded default, [database] mode = managed): impd
// initialises a private datadir under <state_dir>/mariadb on first start,
// runs mariadbd on a unix socket only (--skip-networking), restarts it with
// backoff if it dies, and stops it when impd stops. The server dies with impd
// (PR_SET_PDEATHSIG), so a killed impd never leaves an orphan holding the
// datadir.
//
// Thread model: start()/stop() from the control thread; one supervisor
// thread owns the child process (spawns, waits, restarts).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <sys/types.h>

#include "imp/core/database.h"

namespace spdlog {
class logger;
}

namespace imp::core {

struct ManagedDbOptions {
  std::filesystem::path mariadbd = "/usr/sbin/mariadbd";
  std::filesystem::path installDb = "/usr/bin/mariadb-install-db";
  std::filesystem::path dir;             // <state_dir>/mariadb
  std::filesystem::path errorLog;        // <log_dir>/mariadb.log
  std::size_t bufferPoolMb = 128;
  std::chrono::seconds startTimeout{120};
};

class ManagedMariaDb {
 public:
  ManagedMariaDb(ManagedDbOptions opts, std::shared_ptr<spdlog::logger> log);
  ~ManagedMariaDb();
  ManagedMariaDb(const ManagedMariaDb&) = delete;
  ManagedMariaDb& operator=(const ManagedMariaDb&) = delete;

  // Initialises the datadir if needed, starts the server and returns when it
  // accepts connections. Throws std::runtime_error saying what failed and
  // where its log is.
  void start();
  void stop() noexcept;

  // Connection parameters for the socket (user = the OS user running impd,
  // authenticated by unix_socket).
  DbParams params(const std::string& schema, unsigned poolSize, std::chrono::seconds timeout) const;
  std::filesystem::path socketPath() const { return opts_.dir / "mysqld.sock"; }
  pid_t pid() const { return pid_.load(); }
  int restarts() const { return restarts_.load(); }

 private:
  void initDatadir();
  void killStale();
  pid_t spawn();
  void supervise();

  ManagedDbOptions opts_;
  std::shared_ptr<spdlog::logger> log_;
  std::string osUser_;
  std::atomic<pid_t> pid_{0};
  std::atomic<int> restarts_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> spawnFailed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread supervisor_;
};

}  // namespace imp::core
