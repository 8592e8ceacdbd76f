// The sink's background thread in outpostd (docs/analytics.md, "Running it"). It has its own
// Store connection, so it reads in WAL snapshots beside the ledger worker and never queues work
// on it: a slow or absent ClickHouse only makes this thread wait.
#include <chrono>

#include "outpost/node/analytics.h"
#include "outpost/node/log.h"
#include "outpost/storage/store.h"

namespace outpost::node::analytics {

namespace {
constexpr std::uint32_t kRetryMsMax = 30'000;

}  // namespace

SinkThread::SinkThread(std::string db_path, SinkOptions options, sync::Clock& clock,
                       std::uint32_t idle_ms, std::uint32_t retry_ms)
    : db_path_(std::move(db_path)),
      options_(std::move(options)),
      clock_(clock),
      idle_ms_(idle_ms),
      retry_ms_(retry_ms) {}

SinkThread::~SinkThread() { stop(); }

void SinkThread::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void SinkThread::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SinkThread::wait_ms(std::uint32_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

void SinkThread::loop() {
  auto store = storage::Store::open(db_path_, storage::OpenMode::kExisting);
  if (!store.is_ok()) {
    log(LogLevel::kError, "analytics: cannot open the store; the sink is off",
        {{"error", store.status().to_string()}});
    return;
  }
  Sink sink(**store, options_);
  bool tables = false;
  bool behind_alerted = false;
  std::uint32_t retry = retry_ms_;
  std::string last_error;
  // Bounded by stop(): every iteration ends in a bounded wait that stop() cuts short.
  while (true) {
    Status st = tables ? Status::ok() : sink.create_tables();
    Result<StepResult> r = st.is_ok() ? sink.step() : Result<StepResult>(st);
    if (!r.is_ok()) {
      if (r.status().to_string() != last_error) {
        last_error = r.status().to_string();
        log(LogLevel::kWarn, "analytics: batch not sent; will retry",
            {{"error", last_error}, {"retry_ms", std::to_string(retry)}});
      }
      if (!wait_ms(retry)) return;
      retry = std::min(retry * 2, kRetryMsMax);
      continue;
    }
    if (!last_error.empty()) log(LogLevel::kInfo, "analytics: clickhouse answers again");
    tables = true;
    last_error.clear();
    retry = retry_ms_;
    if (r->behind > options_.behind_alert_ops && !behind_alerted) {
      behind_alerted = true;
      const std::string msg = "analytics sink is " + std::to_string(r->behind) +
                              " ops behind the replica (alert above " +
                              std::to_string(options_.behind_alert_ops) + ")";
      log(LogLevel::kWarn, "analytics: falling behind",
          {{"behind_ops", std::to_string(r->behind)}});
      Status a = (*store)->add_alert(storage::Alert{0, static_cast<std::int64_t>(clock_.now_ms()),
                                                    "analytics_behind", "", msg});
      if (!a.is_ok())
        log(LogLevel::kWarn, "analytics: cannot store alert", {{"error", a.to_string()}});
    } else if (r->behind <= options_.behind_alert_ops && behind_alerted) {
      behind_alerted = false;
      log(LogLevel::kInfo, "analytics: caught up", {{"behind_ops", std::to_string(r->behind)}});
    }
    if (r->ops > 0 && r->behind > 0) {
      if (!wait_ms(0)) return;  // a backlog: go on at once, but let stop() in
      continue;
    }
    if (!wait_ms(idle_ms_)) return;
  }
}

}  // namespace outpost::node::analytics
