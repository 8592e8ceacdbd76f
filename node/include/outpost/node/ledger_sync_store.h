// The node's data as a sync::SyncStore: the adapter between a link's SyncSession and the Ledger
// (node/src/replication/peers_store.cc). The daemon's peer manager makes one per link; the
// simulator (docs/simulator.md) makes the same ones, so its sessions run the daemon's ingest path.
// Not thread-safe: the daemon uses it on the ledger worker only.
#pragma once

#include <functional>
#include <memory>

#include "outpost/node/ledger.h"
#include "outpost/sync/env.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/session.h"

namespace outpost::node {

// Returns the store for the session of one link. `peer` is the certificate that link
// authenticated (every decision about who the peer is uses it); `on_roster` runs after a newer
// roster from the peer is accepted (may be empty); `is_hq` makes it collect peers' alerts.
std::unique_ptr<sync::SyncStore> make_ledger_sync_store(Ledger& ledger, sync::Clock& clock,
                                                        bool is_hq, std::function<void()> on_roster,
                                                        sync::Certificate peer);

}  // namespace outpost::node
