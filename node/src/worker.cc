#include "outpost/node/worker.h"

#include "outpost/node/log.h"

namespace outpost::node {

LedgerWorker::LedgerWorker(std::unique_ptr<Ledger> ledger) : ledger_(std::move(ledger)) {}

LedgerWorker::~LedgerWorker() { stop(); }

void LedgerWorker::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { loop(); });
}

void LedgerWorker::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LedgerWorker::submit(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= kQueueTasksMax) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

LedgerWorker::Stats LedgerWorker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void LedgerWorker::loop() {
  while (true) {
    std::deque<Task> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < kBatchTasksMax) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_batch(batch);
  }
}

void LedgerWorker::run_batch(std::deque<Task>& batch) {
  bool any_mutating = false;
  for (const auto& t : batch) any_mutating |= t.mutating;
  bool durable = true;
  if (any_mutating) {
    Status st = ledger_->begin_batch();
    if (!st.is_ok()) {
      log(LogLevel::kError, "cannot begin batch", {{"error", st.to_string()}});
      for (auto& t : batch) {
        if (t.done) t.done(false);
      }
      return;
    }
  }
  for (auto& t : batch) t.run(*ledger_);
  if (any_mutating) {
    Status st = ledger_->commit_batch();
    if (!st.is_ok()) {
      durable = false;
      log(LogLevel::kError, "group commit failed; no answer of this batch is given as success",
          {{"error", st.to_string()}, {"tasks", std::to_string(batch.size())}});
    }
  }
  std::uint64_t mutating = 0;
  for (auto& t : batch) {
    mutating += t.mutating ? 1 : 0;
    if (t.done) t.done(durable || !t.mutating);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.batches += any_mutating ? 1 : 0;
  stats_.tasks += batch.size();
  stats_.mutating_tasks += mutating;
  stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, mutating);
  stats_.failed_commits += durable ? 0 : 1;
}

}  // namespace outpost::node
