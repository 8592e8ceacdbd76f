// RawPeer: one real Noise link to a running outpostd, opened with an enrolled node's identity
// (read from its data dir; its daemon must not be running) through the project's own client code
// (node/link.h), and driven by hand from the test thread: the test speaks the sync protocol
// itself (docs/sync-protocol.md), so it can send what an honest node never would. Waits are
// bounded hang guards, never timed assertions. Test code only; one test thread drives it.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/link.h"
#include "outpost/sync/protocol.h"

namespace outpost::test {

constexpr auto kHangGuard = std::chrono::seconds(20);

// One link to a node, opened with an enrolled store's identity, driven from the test thread.
class RawPeer {
 public:
  explicit RawPeer(const std::string& data_dir) : data_dir_(data_dir) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RawPeer() {
    if (link_) link_->close(Status::ok());
    work_.reset();
    io_.stop();
    thread_.join();
  }

  testing::AssertionResult connect(std::uint16_t port) {
    auto store = node::open_data_dir_store(data_dir_);
    if (!store.is_ok()) return testing::AssertionFailure() << store.status().to_string();
    auto identity = node::load_identity(data_dir_, **store);
    if (!identity.is_ok()) return testing::AssertionFailure() << identity.status().to_string();
    auto anchors = node::load_trust_anchors(**store);
    if (!anchors.is_ok() || !*anchors)
      return testing::AssertionFailure() << "store is not enrolled";
    auto roster = node::load_roster(**store, **anchors);
    if (!roster.is_ok() || !*roster) return testing::AssertionFailure() << "store has no roster";
    std::shared_ptr<const sync::Roster> r = *roster;
    auto ctx = node::make_link_context(*identity, [r] { return r; });
    std::promise<Result<std::shared_ptr<node::Link>>> done;
    auto fut = done.get_future();
    node::async_connect(
        io_, node::Endpoint{"127.0.0.1", port}, ctx,
        [&done](Result<std::shared_ptr<node::Link>> l) { done.set_value(std::move(l)); });
    if (fut.wait_for(kHangGuard) != std::future_status::ready)
      return testing::AssertionFailure() << "connect hung";
    auto link = fut.get();
    if (!link.is_ok()) return testing::AssertionFailure() << link.status().to_string();
    link_ = *link;
    {
      std::lock_guard<std::mutex> lock(mu_);
      inbox_.clear();
      closed_.reset();
    }
    link_->set_handlers(
        [this](sync::Bytes m) {
          std::lock_guard<std::mutex> lock(mu_);
          inbox_.push_back(std::move(m));
          cv_.notify_all();
        },
        [this](const Status& why) {
          std::lock_guard<std::mutex> lock(mu_);
          closed_ = why;
          cv_.notify_all();
        });
    return testing::AssertionSuccess();
  }

  Status send(sync::Bytes b) { return link_->send(std::move(b)); }

  // The next message of the given kind that the node sends (others are skipped), or nullopt if the
  // link closed or nothing came within the hang guard.
  template <typename T>
  std::optional<T> next() {
    auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      while (!inbox_.empty()) {
        sync::Bytes b = std::move(inbox_.front());
        inbox_.pop_front();
        auto m = sync::decode_message(b);
        if (m.is_ok() && std::holds_alternative<T>(*m)) return std::get<T>(*m);
      }
      if (closed_) return std::nullopt;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
    }
  }

  // Waits until the node closed the link; returns whether it did.
  bool wait_closed() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kHangGuard, [&] { return closed_.has_value(); });
  }

  // The Link the peer runs on (null before connect()).
  const std::shared_ptr<node::Link>& link() const { return link_; }

 private:
  std::string data_dir_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      boost::asio::make_work_guard(io_)};
  std::thread thread_;
  std::shared_ptr<node::Link> link_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<sync::Bytes> inbox_;
  std::optional<Status> closed_;
};

}  // namespace outpost::test
