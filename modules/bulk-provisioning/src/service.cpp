#include "imp/bulk_provisioning/service.h"

#include <imp/core/config.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/core/service_params.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "imp/bulk_provisioning/runner.h"
#include "imp/bulk_provisioning/store.h"

namespace imp::bat {

void addOptions(core::ConfigSchema& s) {
  s.add({kService, kBatchRows, core::OptionType::Int, std::to_string(kDefaultBatchRows), 1, 100000, {},
         "contact rows a bulk import job applies per database transaction (MG-7): larger batches import faster "
         "and hold their users' locks longer"});
}

void BatRuntime::poke() {
  {
    std::lock_guard l(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

void BatRuntime::wait(double seconds) {
  std::unique_lock l(mu_);
  cv_.wait_for(l, std::chrono::duration<double>(seconds), [this] { return poked_ || stopping_.load(); });
  poked_ = false;
}

void BatRuntime::stopping(bool s) {
  {
    std::lock_guard l(mu_);
    stopping_ = s;
  }
  cv_.notify_all();
}

namespace {

class BatService : public core::Service {
 public:
  BatService(std::shared_ptr<xcp::XcpRuntime> xmpp, std::shared_ptr<BatRuntime> rt)
      : xmpp_(std::move(xmpp)), rt_(std::move(rt)) {}
  ~BatService() override { stop(); }

  std::string_view name() const override { return kService; }
  core::ServiceKind kind() const override { return core::ServiceKind::Feature; }

  void configure(const core::ServiceContext& ctx) override {
    if (!ctx.database) throw std::runtime_error("bulk-provisioning needs the cluster database");
    db_ = ctx.database;
    nodeId_ = ctx.nodeId;
    log_ = ctx.logger;
    params_ = ctx.params;
    metrics_ = ctx.metrics;
    if (ctx.config) batchRows_ = static_cast<std::size_t>(ctx.config->getInt(kService, kBatchRows));
    readParams();
  }

  void start() override {
    registerMetrics();
    rt_->stopping(false);
    thread_ = std::thread([this] { run(); });
  }

  void stop() noexcept override {
    if (metrics_) metrics_->remove(kService);
    if (!thread_.joinable()) return;
    rt_->stopping(true);
    thread_.join();
  }

  void reload(const core::ConfigChange&) override { readParams(); }

  core::ServiceStatus status() const override {
    core::ServiceStatus s;
    s.state = thread_.joinable() ? core::ServiceState::Running : core::ServiceState::Stopped;
    const auto id = rt_->current.load();
    const auto rate = rt_->importRate.load();
    s.detail = (id ? "running job " + std::to_string(id) : std::string("no job running")) + "; import rate " +
               (rate ? std::to_string(rate) + " rows/s" : std::string("unlimited"));
    return s;
  }

 private:
  void readParams() {
    if (!params_) return;
    try {
      rt_->importRate = static_cast<std::uint64_t>(params_->get(kService, kImportRate));
    } catch (const std::exception& e) {
      if (log_) log_->error("the import rate cannot be read, the previous one stays: {}", e.what());
    }
  }

  void registerMetrics() {
    if (!metrics_) return;
    using T = core::Metrics::Type;
    metrics_->collect("imp_bat_rows_total", "rows of bulk jobs, by job kind and result (MG-7, MG-9)", T::Counter,
                      kService, [rt = rt_] {
                        std::vector<core::Metrics::Sample> v;
                        for (int k = 0; k < 2; ++k) {
                          const std::string kind(nameOf(k == 0 ? JobKind::Import : JobKind::Rename));
                          v.push_back({{{"kind", kind}, {"result", "applied"}}, double(rt->applied[k].load())});
                          v.push_back({{{"kind", kind}, {"result", "ignored"}}, double(rt->ignored[k].load())});
                          v.push_back({{{"kind", kind}, {"result", "internal_error"}}, double(rt->errors[k].load())});
                        }
                        return v;
                      });
    metrics_->collect("imp_bat_jobs_total", "bulk jobs ended on this node, by status", T::Counter, kService, [rt = rt_] {
      std::vector<core::Metrics::Sample> v;
      for (auto [i, st] : {std::pair{0, JobStatus::Completed}, {1, JobStatus::Failed}, {2, JobStatus::Cancelled}})
        v.push_back({{{"status", std::string(nameOf(st))}}, double(rt->ended[i].load())});
      return v;
    });
    metrics_->collect("imp_bat_job_running", "the bulk job this node runs now (its id; 0 = none)", T::Gauge, kService,
                      [rt = rt_] { return std::vector<core::Metrics::Sample>{{{}, double(rt->current.load())}}; });
  }

  void run() {
    JobStore jobs(*db_);
    RunnerContext ctx;
    ctx.batchRows = batchRows_;
    ctx.db = db_;
    ctx.nodeId = nodeId_;
    ctx.xmpp = xmpp_;
    ctx.log = log_;
    ctx.rowsPerSecond = [rt = rt_] { return rt->importRate.load(); };
    ctx.stopping = [rt = rt_] { return rt->stopping(); };
    ctx.onBatch = [rt = rt_](JobKind k, std::uint64_t a, std::uint64_t i, std::uint64_t e) {
      const int x = k == JobKind::Import ? 0 : 1;
      rt->applied[x] += a;
      rt->ignored[x] += i;
      rt->errors[x] += e;
    };
    ctx.onEnd = [rt = rt_](JobStatus s) {
      if (s == JobStatus::Completed) ++rt->ended[0];
      if (s == JobStatus::Failed) ++rt->ended[1];
      if (s == JobStatus::Cancelled) ++rt->ended[2];
    };
    ctx.pause = [rt = rt_](double s) {
      // Only a stop cuts it short; a poke (a new job) does not.
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(s);
      while (!rt->stopping()) {
        const double left = std::chrono::duration<double>(until - std::chrono::steady_clock::now()).count();
        if (left <= 0) break;
        rt->wait(left);
      }
    };
    while (!rt_->stopping()) {
      std::optional<JobInfo> job;
      try {
        // What this node was running when it stopped comes first (MG-10).
        auto left = jobs.runningOn(nodeId_);
        if (!left.empty()) job = left.front();
        else job = jobs.claimDue(nodeId_);
        if (!job) {
          auto next = jobs.secondsToNext();
          rt_->wait(next && *next < 1.0 ? std::max(0.01, *next) : 1.0);
          continue;
        }
        rt_->current = job->id;
        runJob(ctx, *job);
        rt_->current = 0;
      } catch (const core::DbError& e) {
        rt_->current = 0;
        // The database went away: the job (still running in it) resumes
        // from its checkpoint once the database answers again.
        if (log_) log_->error("bulk jobs: the database failed ({}); trying again in 5 s", e.what());
        rt_->wait(5.0);
      } catch (const std::exception& e) {
        rt_->current = 0;
        if (log_) log_->error("bulk job {}: {}", job ? job->id : 0, e.what());
        try {
          if (job) {
            jobs.fail(job->id, e.what());
            ++rt_->ended[1];  // imp_bat_jobs_total{status="failed"}, as a failure the runner records
          }
        } catch (const std::exception& e2) {
          if (log_) log_->error("bulk job {}: its failure cannot be recorded: {}", job->id, e2.what());
        }
        rt_->wait(1.0);
      }
    }
  }

  std::shared_ptr<xcp::XcpRuntime> xmpp_;
  std::shared_ptr<BatRuntime> rt_;
  core::Database* db_ = nullptr;
  std::size_t batchRows_ = kDefaultBatchRows;
  std::string nodeId_;
  std::shared_ptr<spdlog::logger> log_;
  const core::ServiceParams* params_ = nullptr;
  core::Metrics* metrics_ = nullptr;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<core::Service> makeService(std::shared_ptr<xcp::XcpRuntime> xmpp, std::shared_ptr<BatRuntime> rt) {
  return std::make_unique<BatService>(std::move(xmpp), std::move(rt));
}

}  // namespace imp::bat
