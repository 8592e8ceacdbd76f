// HQ's analytics sink (docs/analytics.md): streams the ops of HQ's replica, and snapshots of the
// members they touch, into ClickHouse over its HTTP interface, as JSONEachRow batches. Tables are
// ReplacingMergeTree, keyed so that a batch sent twice changes nothing once read with FINAL
// (ops by (origin, seq); member rows by their key, newest snapshot version wins). The cursor, one
// seq per origin, lives in the store's meta table and moves only after ClickHouse acknowledged
// the batch: a restart or a ClickHouse outage resends at most the unacknowledged batch.
// A Sink is owned by one thread (its Store connection is its own); SinkThread runs one in the
// background of outpostd, off the ledger worker.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "outpost/base/status.h"
#include "outpost/net/http_client.h"
#include "outpost/sync/env.h"
#include "outpost/sync/op.h"

namespace outpost::storage {
class Store;
}

namespace outpost::node::analytics {

// Meta key of the cursor in the store (value: encode_cursor()).
inline constexpr const char* kCursorMetaKey = "analytics_clickhouse_cursor";
inline constexpr std::size_t kBatchOpsMax = 100'000;

struct SinkOptions {
  net::Endpoint endpoint{"127.0.0.1", 8123};
  std::string database = "default";
  // Ops per batch: bounds the sink's memory (a batch is its whole buffer) and each request.
  std::size_t batch_ops = 1000;
  // Log a warning (and raise an alert) when more ops than this wait behind the cursor.
  std::uint64_t behind_alert_ops = 100'000;
  // Bound of one exchange with ClickHouse (connect is bounded separately, net::ClientOptions).
  int request_timeout_ms = 10'000;
};

// Parses "http://HOST:PORT" (numeric host, no path) into an endpoint, or kInvalidArgument.
Result<net::Endpoint> parse_clickhouse_url(const std::string& url);

using Cursor = std::map<sync::NodeId, std::uint64_t>;  // highest seq sunk, per origin
std::string encode_cursor(const Cursor& c);            // "ORIGINHEX:SEQ,..." ascending
Result<Cursor> decode_cursor(const std::string& text);

struct StepResult {
  std::size_t ops = 0;       // ops sent (and acknowledged) in this step
  std::size_t members = 0;   // member snapshots sent
  std::uint64_t behind = 0;  // ops held by the store past the cursor after this step
};

class Sink {
 public:
  // `store` must outlive the sink and be used by no other thread meanwhile.
  Sink(storage::Store& store, SinkOptions options);
  ~Sink();

  // Creates the database's tables when absent (CREATE TABLE IF NOT EXISTS; docs/analytics.md).
  Status create_tables();
  // Sends the next batch (at most batch_ops ops past the cursor, and a snapshot of every member
  // they touch) and moves the cursor once ClickHouse acknowledged it. Sends nothing when caught
  // up. On failure nothing moves: the next step sends the same ops again.
  Result<StepResult> step();
  // The stored cursor (empty: nothing sunk yet).
  Result<Cursor> cursor();
  // Runs `sql` on ClickHouse and returns the body of its answer (TabSeparated unless the query
  // says otherwise); a refusal is kIoError with ClickHouse's message. For tests and tools.
  Result<std::string> query(const std::string& sql);

 private:
  Result<std::string> post(const std::string& query_param, const std::string& body);
  storage::Store& store_;
  SinkOptions options_;
  net::HttpClient client_;
};

// A Sink on a thread of its own with its own Store connection to `db_path`: it steps while there
// is a backlog and otherwise waits `idle_ms` (woken early by stop()); after a failure it waits
// `retry_ms`, doubling up to 30 s. Every wait is bounded; stop() joins.
class SinkThread {
 public:
  // `clock` (the alert's time) must outlive the thread.
  SinkThread(std::string db_path, SinkOptions options, sync::Clock& clock,
             std::uint32_t idle_ms = 1000, std::uint32_t retry_ms = 500);
  ~SinkThread();
  SinkThread(const SinkThread&) = delete;
  SinkThread& operator=(const SinkThread&) = delete;
  void start();
  void stop();

 private:
  void loop();
  bool wait_ms(std::uint32_t ms);  // false once stopping
  std::string db_path_;
  SinkOptions options_;
  sync::Clock& clock_;
  std::uint32_t idle_ms_, retry_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace outpost::node::analytics
