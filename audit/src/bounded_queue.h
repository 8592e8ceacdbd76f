// A bounded multi-producer multi-consumer queue (mutex + two condition variables) for handing
// batches of work to the verifier's threads. push() blocks while the queue is full, so a fast
// reader cannot buffer a whole bundle ahead of the workers; pop() returns nullopt once the queue
// is closed and drained. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "outpost/base/status.h"

namespace outpost::audit {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {
    OUTPOST_CHECK(capacity_ >= 1);
  }

  // Blocks until there is room, then enqueues. Must not be called after close().
  void push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    OUTPOST_CHECK(!closed_);
    items_.push_back(std::move(item));
    not_empty_.notify_one();
  }

  // Blocks until an item is available or the queue is closed and empty (then nullopt).
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // No more pushes; consumers drain what is left and then see nullopt.
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace outpost::audit
