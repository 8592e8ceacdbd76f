// PeerManager: the daemon side of replication. Listens on the peer port, dials configured peers
// with jittered exponential backoff, runs one sync::SyncSession per admitted link (sessions live
// on the ledger worker thread, so ingest is part of group commit and ACKs leave only after the
// batch is durable), pushes new ops on a schedule, relays (store-and-forward), drives the rights
// broker (sync::RightsBroker: the policy lives there), runs the rebalancer, and exposes peer state
// and partition control on the admin API. Public methods are safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "outpost/base/status.h"
#include "outpost/node/config.h"
#include "outpost/node/http.h"
#include "outpost/node/ledger.h"
#include "outpost/node/link.h"
#include "outpost/node/worker.h"

namespace boost::asio {
class io_context;
}

namespace outpost::node {

class PeerManager {
 public:
  // Reconnect backoff: starts at kBackoffMinMs, doubles per failure up to kBackoffMaxMs, with
  // +-50% jitter.
  static constexpr int kBackoffMinMs = 200;
  static constexpr int kBackoffMaxMs = 5'000;
  // A link that ends with an error sooner than this after its handshake counts as a failed
  // attempt (a peer that refuses every batch must not be redialled at the minimum backoff).
  static constexpr int kLinkStableMs = 10'000;
  static_assert(kLinkStableMs > kBackoffMaxMs, "a stable link outlives the longest backoff");

  PeerManager(boost::asio::io_context& io, LedgerWorker& worker, const Config& config,
              sync::Clock& clock, LinkContext context);
  ~PeerManager();

  // Binds the peer port and starts dialing. kUnavailable if the port cannot be bound.
  Status start();
  // Closes every link and stops dialing. Call on the io thread.
  void stop();
  Endpoint local_endpoint() const;

  // Schedules a push of new local ops to every peer soon (coalesced).
  void notify_local_write();
  // Rights broker, requester side (the Api's RightsBroker): asks for `amount` rights of `member`'s
  // `account` as sync::RightsBroker decides (HQ first, then the holders in `rights_elsewhere`,
  // within limits::kRightsRequestTimeoutMs) and calls `done(tried, granted)` once, on the io
  // thread.
  void request_rights(const sync::MemberId& member, sync::Account account, std::uint64_t amount,
                      const sync::RightsView& rights_elsewhere,
                      std::function<void(bool tried, bool granted)> done);
  // Admin routes: GET /admin/v1/peers, POST /admin/v1/links {"state": "down"|"up"}. `authorize`
  // checks the admin token (Api::authorized). Returns false for other routes.
  using Authorize =
      std::function<void(const HttpRequest&, const Responder&, std::function<void()>)>;
  bool handle_admin(const HttpRequest& req, const Responder& respond, const Authorize& authorize);
  // Adds a "peers" summary to GET /admin/v1/node (called on the worker thread).
  void node_info(Json& out);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace outpost::node
