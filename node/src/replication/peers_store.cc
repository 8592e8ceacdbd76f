// The node's data as a sync::SyncStore: what one link's session reads and writes (ops, documents,
// alerts, the fence on the peer's HELLO). Part of PeerManager (peers_impl.h).
#include "outpost/base/version.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/log.h"
#include "peers_impl.h"

namespace outpost::node {

using sync::VersionVector;

std::uint64_t vv_get(const VersionVector& vv, const sync::NodeId& id) {
  auto it = vv.find(id);
  return it == vv.end() ? 0 : it->second;
}

namespace {

// The node's data as a sync::SyncStore, for the session of one link: `peer` is the certificate
// that link authenticated, and every decision about who the peer is (fence, alerts) uses it.
// Used only on the worker thread.
class LedgerSyncStore final : public sync::SyncStore {
 public:
  LedgerSyncStore(Ledger& ledger, sync::Clock& clock, bool is_hq, std::function<void()> on_roster,
                  sync::Certificate peer)
      : l_(ledger),
        clock_(clock),
        is_hq_(is_hq),
        on_roster_(std::move(on_roster)),
        peer_(std::move(peer)) {}
  sync::NodeId self() const override { return l_.node_id(); }
  Result<VersionVector> version_vector() override { return l_.store().version_vector(); }
  Result<std::vector<sync::SignedOp>> ops_from(const sync::NodeId& origin, std::uint64_t from_seq,
                                               std::size_t max_ops) override {
    return l_.store().ops_of_origin(origin, from_seq, max_ops);
  }
  Result<sync::IngestReport> ingest(const std::vector<sync::SignedOp>& ops) override {
    return l_.ingest(ops, peer_.node_id);
  }
  std::string software_version() const override { return kSoftwareVersion; }
  std::uint32_t schema_version() const override {
    return static_cast<std::uint32_t>(storage::kSchemaVersion);
  }
  // Runs inside the worker task that handles the HELLO, so no op is signed between learning what
  // the peer holds of this node's log and fencing on it. The session already refused a HELLO
  // that names another node than the authenticated one; who the peer is comes from its
  // certificate, never from the HELLO.
  Status on_peer_hello(const sync::HelloMsg& hello) override {
    const bool is_hq = peer_.role == sync::NodeRole::kHq;
    return l_.observe_peer_hello(peer_.name, is_hq, vv_get(hello.vv, l_.node_id()));
  }
  std::uint64_t blob_version(sync::BlobKind kind) override {
    switch (kind) {
      case sync::BlobKind::kRoster:
        return l_.roster() ? l_.roster()->version : 0;
      case sync::BlobKind::kRules:
        return l_.signed_rules_version();
      case sync::BlobKind::kTreeHeads:
        return l_.tree_head_version();
    }
    return 0;
  }
  std::optional<sync::BlobMsg> blob(sync::BlobKind kind) override {
    sync::BlobMsg b;
    b.kind = kind;
    auto fill = [&b](const auto& doc) -> std::optional<sync::BlobMsg> {
      if (!doc.is_ok() || !*doc) return std::nullopt;
      b.version = (*doc)->version;
      b.body = (*doc)->body;
      b.sig.assign((*doc)->sig.begin(), (*doc)->sig.end());
      return b;
    };
    switch (kind) {
      case sync::BlobKind::kRoster:
        return fill(l_.store().latest_roster());
      case sync::BlobKind::kRules:
        return fill(l_.store().latest_rules());
      case sync::BlobKind::kTreeHeads:
        return fill(l_.store().latest_tree_head_set());
    }
    return std::nullopt;
  }
  Status offer_blob(const sync::BlobMsg& b) override {
    if (b.kind == sync::BlobKind::kRules || b.kind == sync::BlobKind::kTreeHeads) {
      Status st = b.kind == sync::BlobKind::kRules ? l_.accept_rules(b.body, b.sig)
                                                   : l_.accept_tree_heads(b.body, b.sig);
      if (st.code() == Code::kRefused) return Status::ok();  // stale (or not yet usable) offer
      return st;
    }
    Status st = l_.accept_roster(b.body, b.sig);
    if (st.code() == Code::kRefused) return Status::ok();  // stale offer
    if (st.is_ok()) {
      log(LogLevel::kInfo, "accepted roster from peer", {{"version", std::to_string(b.version)}});
      if (on_roster_) on_roster_();
    }
    return st;
  }
  bool defer_rights_requests() const override { return true; }
  // Alerts flow to HQ only, each node sending its own (docs/sync-protocol.md "Alerts"): HQ asks
  // every peer for them, a store sends them only to a peer the roster lists as HQ.
  // The session names the peer of its HELLO, which it has already checked against the link;
  // the decisions here use the link's certificate all the same.
  Result<std::optional<std::uint64_t>> alerts_wanted_from(const sync::NodeId&) override {
    if (!is_hq_) return std::optional<std::uint64_t>{};
    OUTPOST_ASSIGN_OR_RETURN(std::int64_t held, l_.store().peer_alerts_cursor(peer_.node_id));
    return std::optional<std::uint64_t>{static_cast<std::uint64_t>(held)};
  }
  Result<std::uint64_t> accept_alerts(const sync::NodeId&,
                                      const std::vector<sync::AlertRecord>& alerts) override {
    if (!is_hq_) return Status::unsupported("only HQ collects alerts");
    return store_peer_alerts(l_.store(), peer_.node_id, alerts, clock_.now_ms());
  }
  Result<std::vector<sync::AlertRecord>> alerts_for(const sync::NodeId&, std::uint64_t after,
                                                    std::size_t max_alerts) override {
    auto roster = l_.roster();
    const sync::SignedCertificate* sc = roster ? roster->find(peer_.node_id) : nullptr;
    if (sc == nullptr || sc->cert.role != sync::NodeRole::kHq)
      return std::vector<sync::AlertRecord>{};
    return own_alerts_after(l_.store(), after, max_alerts);
  }

 private:
  Ledger& l_;
  sync::Clock& clock_;
  const bool is_hq_;
  std::function<void()> on_roster_;
  sync::Certificate peer_;
};

}  // namespace

std::unique_ptr<sync::SyncStore> make_ledger_sync_store(Ledger& ledger, sync::Clock& clock,
                                                        bool is_hq, std::function<void()> on_roster,
                                                        sync::Certificate peer) {
  return std::make_unique<LedgerSyncStore>(ledger, clock, is_hq, std::move(on_roster),
                                           std::move(peer));
}

}  // namespace outpost::node
