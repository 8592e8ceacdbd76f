// Daemon: outpostd's composition root. Opens the data dir, starts the ledger worker (group
// commit), the POS API, the admin API and the peer port on one Boost.Asio io_context, and stops
// cleanly: listeners close, in-flight requests finish, the worker drains, SQLite checkpoints.
// run() blocks the calling thread; stop() may be called from any thread or a signal handler
// installed by run().
#pragma once

#include <memory>
#include <string>

#include "outpost/base/status.h"
#include "outpost/node/config.h"
#include "outpost/sync/hlc.h"

namespace outpost::node {

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> create(const Config& config, sync::Clock& clock);
  ~Daemon();

  // Binds every listener and writes the ports file. Fails with a message naming the address.
  Status start();
  // Runs until SIGTERM/SIGINT or stop(); then shuts down gracefully.
  void run();
  void stop();

  Endpoint api_endpoint() const;
  Endpoint admin_endpoint() const;
  Endpoint peer_endpoint() const;

  struct Impl;

 private:
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::node
