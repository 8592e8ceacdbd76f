// HQ's view of its peers beyond their ops: when each peer was last heard from (kept while its
// link is down and across restarts), and the alerts the nodes report over sync (docs/sync-
// protocol.md "Alerts", docs/admin-api.md "GET /admin/v1/peers" and "GET /admin/v1/alerts").
// PeerContacts is thread-safe; the alert functions run on the ledger worker.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/node/ledger.h"
#include "outpost/storage/store.h"
#include "outpost/sync/protocol.h"

namespace outpost::node {

// The peers this node has linked with (this run, or as an earlier run persisted them), with
// their last contact: the arrival of the last authenticated frame (a message or a keepalive).
// Bounded: one entry per admitted node, and the roster has at most limits::kRosterNodesMax.
class PeerContacts {
 public:
  struct Peer {
    std::string name, role, address, direction;  // as its last link showed it ("" if never linked)
    std::string last_error;                      // why its last link closed
    std::size_t links = 0;                       // links established now
    std::uint64_t last_contact_ms = 0;           // 0: never heard from
    std::uint64_t down_since_ms = 0;             // when its last link closed; 0: up or unknown
    bool seen_since_start = false;               // linked since this node started
    std::uint64_t persisted_ms = 0;              // when its contact was last written
  };

  // Takes what an earlier run persisted (call before any link comes up).
  void load(const std::vector<storage::PeerContact>& rows);
  // A link to `id` came up at `now_ms`; returns the row to persist.
  storage::PeerContact link_up(const sync::NodeId& id, const Peer& shown, std::uint64_t now_ms);
  // A link to `id` closed at `now_ms`, its last authenticated frame at `last_frame_ms`; returns
  // the row to persist (down since now when it was the peer's last link).
  storage::PeerContact link_down(const sync::NodeId& id, std::uint64_t last_frame_ms,
                                 std::uint64_t now_ms, const std::string& why);
  // Notes a live link's last frame; returns a row to persist when the last write of this peer is
  // older than limits::kPeerContactPersistIntervalMs.
  std::optional<storage::PeerContact> touch(const sync::NodeId& id, std::uint64_t last_frame_ms,
                                            std::uint64_t now_ms);
  std::map<sync::NodeId, Peer> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<sync::NodeId, Peer> peers_;
};

// Sender side of ALERTS: up to `max_alerts` of this node's own alerts above id `after`,
// ascending, cleaned to what the wire carries. When `after` is beyond the highest id held (HQ
// holds alerts of an earlier history: a restore from backup), the next id is raised above it.
Result<std::vector<sync::AlertRecord>> own_alerts_after(storage::Store& store, std::uint64_t after,
                                                        std::size_t max_alerts);
// Receiver side: stores alerts that `source` (the session's authenticated peer) raised, received
// at `now_ms`; returns the highest id of `source` now held.
Result<std::uint64_t> store_peer_alerts(storage::Store& store, const sync::NodeId& source,
                                        const std::vector<sync::AlertRecord>& alerts,
                                        std::uint64_t now_ms);

// GET /admin/v1/alerts: the newest `limit` alerts held here, this node's own and those its peers
// reported, newest first (only `source`'s when given), their counts by kind, and a summary per
// reporting node. Errors are the store's (reading the database).
Result<Json> alerts_json(Ledger& ledger, const std::optional<sync::NodeId>& source,
                         std::size_t limit);

}  // namespace outpost::node
