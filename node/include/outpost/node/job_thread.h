// The node's one kind of background thread: a thread that drains a bounded queue in submission
// order, a batch at a time. BatchThread<Item> is the implementation; JobThread (plain jobs, one
// at a time) and LedgerWorker (worker.h: ledger tasks, a batch per group commit) are built on it.
// The daemon uses JobThreads for member PIN hashing (Argon2id, kept off the ledger worker) and for
// verifying the signatures of received ops ahead of ingest. submit() and stop() are safe from any
// thread; items are handed to the runner on the BatchThread's own thread, in submission order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace outpost::node {

template <typename Item>
class BatchThread {
 public:
  // Runs one batch (1..batch_max items, oldest first) on the thread. `stopping` is true for the
  // batches taken after stop() was called: the queue is still drained, the runner decides what a
  // late item gets (run it, or only answer it).
  using RunBatch = std::function<void(std::vector<Item>& batch, bool stopping)>;

  // Nothing runs before start(); items submitted earlier wait in the queue.
  BatchThread(std::size_t queue_max, std::size_t batch_max, RunBatch run_batch)
      : queue_max_(queue_max), batch_max_(batch_max), run_batch_(std::move(run_batch)) {}
  ~BatchThread() { stop(); }
  BatchThread(const BatchThread&) = delete;
  BatchThread& operator=(const BatchThread&) = delete;

  // Starts the thread. Idempotent; does nothing after stop().
  void start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    thread_ = std::thread([this] { loop(); });
  }

  // Queues `item`. Returns false (item not queued, still owned by the caller's copy) when
  // `queue_max` items wait already or stop() was called.
  bool submit(Item item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || queue_.size() >= queue_max_) return false;
      queue_.push_back(std::move(item));
    }
    cv_.notify_one();
    return true;
  }

  // Refuses new items, hands every queued one to the runner (stopping = true), joins the thread.
  // Idempotent. Called from the thread itself (a runner stopping its own queue) it only marks
  // the stop; the owner's later stop() or the destructor joins.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  // Items waiting (not yet taken by the thread).
  std::size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }

 private:
  void loop() {
    while (true) {
      std::vector<Item> batch;
      bool stopping = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        while (!queue_.empty() && batch.size() < batch_max_) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        stopping = stopping_;
      }
      run_batch_(batch, stopping);
    }
  }

  const std::size_t queue_max_;
  const std::size_t batch_max_;
  const RunBatch run_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool started_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

// Plain jobs run one at a time in submission order; the thread starts at construction.
class JobThread {
 public:
  // A job runs on the thread; `cancelled` is true when the thread stopped before it could run
  // (the job should then only release what it holds, e.g. answer its request).
  using Job = std::function<void(bool cancelled)>;

  explicit JobThread(std::size_t queue_max)
      : thread_(queue_max, 1, [](std::vector<Job>& batch, bool stopping) {
          for (Job& job : batch) job(stopping);
        }) {
    thread_.start();
  }

  // Queues a job; false (not queued) when `queue_max` jobs wait already or the thread stops.
  bool submit(Job job) { return thread_.submit(std::move(job)); }
  // Finishes the job in progress, runs the queued ones cancelled, joins. Idempotent.
  void stop() { thread_.stop(); }

 private:
  BatchThread<Job> thread_;
};

}  // namespace outpost::node
