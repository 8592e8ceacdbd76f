// LedgerWorker: the one thread that owns the node's Ledger (SQLite connection) and implements
// group commit, on the node's BatchThread (job_thread.h). Tasks queue up while the previous batch
// commits; the worker then runs every queued task inside one transaction (each mutating task in
// its own savepoint), commits once (one fsync) and only then reports each task as durable.
// A failed commit is latched, as LevelDB latches a background error: from then on every task is
// refused until the process restarts, because the ledger's memory may be ahead of its database.
// Thread-safe: submit(), failure() and stats() from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/node/job_thread.h"
#include "outpost/node/ledger.h"

namespace outpost::node {

class LedgerWorker {
 public:
  // Tasks run on the worker thread. `done(durable)` runs on the worker thread after the batch.
  // durable is true when the task ran and what it wrote (if anything) is committed; false when
  // the batch failed to commit (a mutating task's effects are then gone) or when `run` was never
  // called (the batch could not begin, or failure() is latched). A non-mutating task gets false
  // only when it did not run.
  struct Task {
    bool mutating = false;
    std::function<void(Ledger&)> run;
    std::function<void(bool durable)> done;
  };

  struct Stats {
    std::uint64_t batches = 0;
    std::uint64_t tasks = 0;
    std::uint64_t mutating_tasks = 0;
    std::uint64_t largest_batch = 0;
    std::uint64_t failed_commits = 0;
  };

  // Bounds: at most this many tasks per batch, and queued (beyond it submit() refuses).
  static constexpr std::size_t kBatchTasksMax = 512;
  static constexpr std::size_t kQueueTasksMax = 8192;

  explicit LedgerWorker(std::unique_ptr<Ledger> ledger);
  ~LedgerWorker();

  void start();
  // Finishes every queued task, then stops the thread. Idempotent.
  void stop();
  // Queues a task. Returns false (task not queued) when the queue is full, the worker stops, or
  // failure() is latched; failure() tells the last case apart.
  bool submit(Task task);
  // OK while the worker serves. After a group commit failed: kUnavailable naming the error, and
  // it stays so until the process restarts.
  Status failure() const;
  Stats stats() const;
  // For start-up and shutdown code that runs while the worker thread is not running.
  Ledger& ledger_unsafe() { return *ledger_; }

 private:
  void run_batch(std::vector<Task>& batch);
  // Answers every task of `batch` not durable without running it.
  static void refuse(std::vector<Task>& batch);
  void latch(const Status& commit_error);

  std::unique_ptr<Ledger> ledger_;
  mutable std::mutex mu_;  // guards failure_ and stats_
  Status failure_;
  Stats stats_;
  BatchThread<Task> thread_;  // last: stopped (joined) before the members above go
};

}  // namespace outpost::node
