// LedgerWorker: the one thread that owns the node's Ledger (SQLite connection) and implements
// group commit. Tasks queue up while the previous batch commits; the worker then runs every
// queued task inside one transaction (each mutating task in its own savepoint), commits once
// (one fsync) and only then reports each task as durable. Thread-safe: submit() from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "outpost/node/ledger.h"

namespace outpost::node {

class LedgerWorker {
 public:
  // Tasks run on the worker thread. `done(durable)` runs on the worker thread after the batch:
  // durable is false when the batch failed to commit (a mutating task's effects are then gone).
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
  // Queues a task. Returns false (task not queued) when the queue is full or stopping.
  bool submit(Task task);
  Stats stats() const;
  // For start-up and shutdown code that runs while the worker thread is not running.
  Ledger& ledger_unsafe() { return *ledger_; }

 private:
  void loop();
  void run_batch(std::deque<Task>& batch);

  std::unique_ptr<Ledger> ledger_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
  Stats stats_;
};

}  // namespace outpost::node
