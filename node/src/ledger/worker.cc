#include "outpost/node/worker.h"

#include <algorithm>

#include "outpost/node/log.h"

namespace outpost::node {

LedgerWorker::LedgerWorker(std::unique_ptr<Ledger> ledger)
    : ledger_(std::move(ledger)),
      // Batches taken while stopping still run: stop() drains every queued request durably.
      thread_(kQueueTasksMax, kBatchTasksMax,
              [this](std::vector<Task>& batch, bool) { run_batch(batch); }) {}

LedgerWorker::~LedgerWorker() { stop(); }

void LedgerWorker::start() { thread_.start(); }

void LedgerWorker::stop() { thread_.stop(); }

bool LedgerWorker::submit(Task task) {
  if (!failure().is_ok()) return false;
  return thread_.submit(std::move(task));
}

Status LedgerWorker::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

LedgerWorker::Stats LedgerWorker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void LedgerWorker::refuse(std::vector<Task>& batch) {
  for (auto& t : batch) {
    if (t.done) t.done(false);
  }
}

void LedgerWorker::latch(const Status& commit_error) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.failed_commits += 1;
  if (!failure_.is_ok()) return;
  failure_ =
      Status::unavailable("a group commit to the database failed (" + commit_error.to_string() +
                          "); the node refuses every request until outpostd is restarted");
}

void LedgerWorker::run_batch(std::vector<Task>& batch) {
  // Latched: the tasks queued before the failure are refused like the ones submitted after it.
  if (!failure().is_ok()) return refuse(batch);
  const bool any_mutating =
      std::any_of(batch.begin(), batch.end(), [](const Task& t) { return t.mutating; });
  if (any_mutating) {
    // Not latched: a busy database (an `outpost` CLI writer holding the lock past the busy
    // timeout) fails BEGIN without anything having been written; the next batch tries again.
    Status st = ledger_->begin_batch();
    if (!st.is_ok()) {
      log(LogLevel::kError, "cannot begin batch", {{"error", st.to_string()}});
      return refuse(batch);
    }
  }
  for (auto& t : batch) t.run(*ledger_);
  bool durable = true;
  if (any_mutating) {
    Status st = ledger_->commit_batch();
    if (!st.is_ok()) {
      durable = false;
      latch(st);
      log(LogLevel::kError,
          "group commit failed; no answer of this batch is given as success and the node refuses "
          "every "
          "request until it is restarted",
          {{"error", st.to_string()}, {"tasks", std::to_string(batch.size())}});
    }
  }
  std::uint64_t mutating = 0;
  for (auto& t : batch) {
    mutating += t.mutating ? 1 : 0;
    if (t.done) t.done(durable || !t.mutating);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.batches += any_mutating && durable ? 1 : 0;
  stats_.tasks += batch.size();
  stats_.mutating_tasks += mutating;
  stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, durable ? mutating : 0);
}

}  // namespace outpost::node
