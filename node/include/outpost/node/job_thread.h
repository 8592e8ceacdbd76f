// JobThread: one background thread that runs queued jobs in order, with a bounded queue. The
// daemon uses one for member PIN hashing (Argon2id, kept off the ledger worker) and one for
// verifying the signatures of received ops ahead of ingest. submit() and stop() are safe from
// any thread; jobs run on the JobThread's own thread, one at a time, in submission order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace outpost::node {

class JobThread {
 public:
  // A job runs on the thread; `cancelled` is true when the thread stopped before it could run
  // (the job should then only release what it holds, e.g. answer its request).
  using Job = std::function<void(bool cancelled)>;

  explicit JobThread(std::size_t queue_max) : queue_max_(queue_max), thread_([this] { loop(); }) {}
  ~JobThread() { stop(); }
  JobThread(const JobThread&) = delete;
  JobThread& operator=(const JobThread&) = delete;

  // Queues a job; false (not queued) when `queue_max` jobs wait already or the thread stops.
  bool submit(Job job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || queue_.size() >= queue_max_) return false;
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

  // Finishes the job in progress, runs the queued ones cancelled, joins. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  void loop() {
    while (true) {
      Job job;
      bool cancelled = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        cancelled = stopping_;
      }
      job(cancelled);
    }
  }

  const std::size_t queue_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

}  // namespace outpost::node
