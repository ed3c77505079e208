#include "imp/core/managed_db.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace imp::core {

namespace {

std::string currentUser() {
  struct passwd* pw = getpwuid(geteuid());
  if (!pw) throw std::runtime_error("cannot find the name of user id " + std::to_string(geteuid()));
  return pw->pw_name;
}

std::string tail(const std::filesystem::path& file, std::size_t lines) {
  std::ifstream in(file);
  std::vector<std::string> all;
  std::string l;
  while (std::getline(in, l)) all.push_back(l);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "  " + all[i] + "\n";
  return out;
}

// fork+exec with stdout/stderr appended to `logFile`. The child gets
// SIGTERM when the forking thread dies. Only async-signal-safe calls after fork.
pid_t forkExec(const std::vector<std::string>& args, const std::filesystem::path& logFile) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error("cannot open " + logFile.string() + ": " + std::strerror(errno));
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    // Our own handlers and masks must not leak into the server.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int err = errno;
  ::close(fd);
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(err));
  return pid;
}

bool socketAccepts(const std::filesystem::path& path) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(s);
  return ok;
}

}  // namespace

ManagedMariaDb::ManagedMariaDb(ManagedDbOptions opts, std::shared_ptr<spdlog::logger> log)
    : opts_(std::move(opts)), log_(std::move(log)), osUser_(currentUser()) {
  if (socketPath().string().size() >= sizeof(sockaddr_un{}.sun_path))
    throw std::runtime_error("the socket path " + socketPath().string() + " is longer than " +
                             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes; choose a shorter state_dir");
}

ManagedMariaDb::~ManagedMariaDb() { stop(); }

DbParams ManagedMariaDb::params(const std::string& schema, unsigned poolSize, std::chrono::seconds timeout) const {
  DbParams p;
  p.socket = socketPath().string();
  p.user = osUser_;
  p.schema = schema;
  p.poolSize = poolSize;
  p.connectTimeout = timeout;
  return p;
}

void ManagedMariaDb::initDatadir() {
  auto datadir = opts_.dir / "data";
  if (std::filesystem::exists(datadir / "mysql" / "user.frm") || std::filesystem::exists(datadir / "mysql" / "global_priv.frm"))
    return;
  for (const auto& bin : {opts_.installDb, opts_.mariadbd})
    if (access(bin.c_str(), X_OK) != 0)
      throw std::runtime_error(bin.string() + " is not an executable (install mariadb-server, or set it in [database])");
  std::filesystem::create_directories(datadir);
  auto logFile = opts_.dir / "install-db.log";
  if (log_) log_->info("initialising managed MariaDB datadir {}", datadir.string());
  std::vector<std::string> args = {opts_.installDb.string(),
                                   "--no-defaults",
                                   "--datadir=" + datadir.string(),
                                   "--user=" + osUser_,
                                   "--auth-root-authentication-method=socket",
                                   "--skip-test-db",
                                   "--skip-name-resolve",
                                   "--basedir=/usr"};
  pid_t pid = forkExec(args, logFile);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::filesystem::remove_all(datadir);
    throw std::runtime_error("mariadb-install-db failed (see " + logFile.string() + "):\n" + tail(logFile, 10));
  }
}

void ManagedMariaDb::killStale() {
  auto pidFile = opts_.dir / "mysqld.pid";
  std::ifstream in(pidFile);
  pid_t old = 0;
  if (!(in >> old) || old <= 1) return;
  std::ifstream comm("/proc/" + std::to_string(old) + "/comm");
  std::string name;
  comm >> name;
  if (name != "mariadbd" && name != "mysqld") return;
  if (log_) log_->warn("stopping a MariaDB server (pid {}) left running on {}", old, opts_.dir.string());
  kill(old, SIGTERM);
  for (int i = 0; i < 600 && kill(old, 0) == 0; ++i) usleep(100 * 1000);
  if (kill(old, 0) == 0) kill(old, SIGKILL);
}

pid_t ManagedMariaDb::spawn() {
  std::error_code ec;
  std::filesystem::remove(socketPath(), ec);
  std::vector<std::string> args = {opts_.mariadbd.string(),
                                   "--no-defaults",
                                   "--datadir=" + (opts_.dir / "data").string(),
                                   "--socket=" + socketPath().string(),
                                   "--pid-file=" + (opts_.dir / "mysqld.pid").string(),
                                   "--log-error=" + opts_.errorLog.string(),
                                   "--skip-networking",
                                   "--skip-name-resolve",
                                   "--skip-log-bin",
                                   "--character-set-server=utf8mb4",
                                   "--collation-server=utf8mb4_bin",
                                   "--max-connections=1000",
                                   "--innodb-buffer-pool-size=" + std::to_string(opts_.bufferPoolMb) + "M"};
  if (geteuid() == 0) args.push_back("--user=root");
  return forkExec(args, opts_.dir / "mariadbd.out");
}

void ManagedMariaDb::supervise() {
  std::chrono::seconds backoff{1};
  while (!stopping_) {
    pid_t pid = 0;
    try {
      pid = spawn();
    } catch (const std::exception& e) {
      if (log_) log_->error("cannot start mariadbd: {}", e.what());
      spawnFailed_ = true;
      cv_.notify_all();
      return;
    }
    pid_ = pid;
    cv_.notify_all();
    auto started = std::chrono::steady_clock::now();
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    if (stopping_) break;
    if (log_)
      log_->error("managed MariaDB exited unexpectedly ({} {}); restarting in {} s. Last lines of {}:\n{}",
                  WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                  backoff.count(), opts_.errorLog.string(), tail(opts_.errorLog, 5));
    ++restarts_;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, backoff, [&] { return stopping_.load(); });
    // A server that stayed up a while gets a fresh backoff.
    backoff = std::chrono::steady_clock::now() - started > std::chrono::seconds(60) ? std::chrono::seconds(1)
                                                                                     : std::min(backoff * 2, std::chrono::seconds(30));
  }
}

void ManagedMariaDb::start() {
  std::filesystem::create_directories(opts_.dir);
  std::filesystem::permissions(opts_.dir, std::filesystem::perms::owner_all);
  if (opts_.errorLog.empty()) opts_.errorLog = opts_.dir / "mariadb.log";
  std::filesystem::create_directories(opts_.errorLog.parent_path());
  initDatadir();
  killStale();
  stopping_ = false;
  spawnFailed_ = false;
  supervisor_ = std::thread([this] { supervise(); });
  auto deadline = std::chrono::steady_clock::now() + opts_.startTimeout;
  // Wait for the server's socket to accept connections, watching the child.
  while (std::chrono::steady_clock::now() < deadline) {
    if (spawnFailed_) break;
    if (pid_ != 0 && socketAccepts(socketPath())) {
      if (log_) log_->info("managed MariaDB ready on {} (pid {})", socketPath().string(), pid_.load());
      return;
    }
    if (restarts_ > 0) break;  // died during start-up
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error("managed MariaDB did not start (see " + opts_.errorLog.string() + "):\n" + tail(opts_.errorLog, 10));
}

void ManagedMariaDb::stop() noexcept {
  stopping_ = true;
  cv_.notify_all();
  pid_t pid = pid_.load();
  if (pid > 0) kill(pid, SIGTERM);
  if (supervisor_.joinable()) {
    // mariadbd shuts down cleanly in a few seconds; give it a minute, then kill.
    for (int i = 0; i < 600 && pid_.load() != 0; ++i) usleep(100 * 1000);
    pid = pid_.load();
    if (pid > 0) kill(pid, SIGKILL);
    supervisor_.join();
    if (log_) log_->info("managed MariaDB stopped");
  }
}

}  // namespace imp::core
