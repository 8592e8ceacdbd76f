// Ledger's side of replication (outpost/node/ledger.h; the files of Ledger are listed in
// ledger_internal.h): ingest of ops received from a peer, each judged by the log rule
// (sync/rule_book.h), all or nothing per batch, with equivocation kept as evidence; the
// signatures the verifier thread checked ahead; and the seq fence of a node restored from a
// backup (docs/security.md, "Seq fence").
#include <algorithm>
#include <set>

#include "ledger_internal.h"
#include "outpost/node/ledger.h"
#include "outpost/node/log.h"
#include "outpost/node/schema.h"

namespace outpost::node {

using ledger_internal::kMetaAwaitingPeer;
using ledger_internal::kMetaOwnSeqFloor;
using ledger_internal::parse_hlc;
using ledger_internal::trust_in;
using sync::Account;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

namespace {

// The stored answer for one of this node's own ops that it got back from a peer (the first
// answer's balances are gone with the lost copy): enough for a POS replay.
Done recovered_answer(const sync::SignedOp& sop) {
  const Op& op = sop.op;
  Done d;
  d.origin = op.origin;
  d.seq = op.seq;
  d.kind = op.kind;
  d.member = op.member;
  if (op.account != Account::kNone) d.amount = op.amount;
  if (op.kind == OpKind::kEarn) d.purchase_minor = op.spend_minor;
  d.hash = sop.hash;
  d.recovered_from_peer = true;
  return d;
}

// Stores the answer of one of this node's own ops (`sop`, made for a POS request), given back by
// a peer after a restore: a POS that retries its request must get it as a replay, never a second
// execution. Does nothing for an op made for no request, or a request whose answer is held.
Status remember_recovered_request(storage::Store& store, const sync::SignedOp& sop) {
  const Op& op = sop.op;
  if (op.request_id.empty()) return Status::ok();
  OUTPOST_ASSIGN_OR_RETURN(auto prior, store.find_request(op.request_id));
  if (prior) return Status::ok();
  return store.put_request(op.request_id, op.origin, op.seq,
                           schema::done_json(recovered_answer(sop)).dump());
}

// Moves the stored HLC past `newest`, the newest HLC of the ops a batch applied, so that the next
// op this node signs is ordered after them.
Status observe_hlc(storage::Store& store, const sync::Hlc& newest) {
  OUTPOST_ASSIGN_OR_RETURN(auto hlc_text, store.get_meta("hlc"));
  sync::HlcClock hlc;
  if (hlc_text) {
    OUTPOST_ASSIGN_OR_RETURN(sync::Hlc last, parse_hlc(*hlc_text));
    hlc = sync::HlcClock(last);
  }
  hlc.observe(newest, 0);
  return store.set_meta("hlc", hlc.last().to_string());
}

// The ingest report's line for an op kept as evidence: an equivocation (a second op at a held
// seq) or a fork (a successor of another op than the held one at `head_seq`).
std::string equivocation_finding(sync::LogVerdict verdict, const Op& op, std::uint64_t head_seq) {
  if (verdict == sync::LogVerdict::kEquivocation) {
    return "origin " + sync::id_hex(op.origin) + " signed two different ops with seq " +
           std::to_string(op.seq);
  }
  return "origin " + sync::id_hex(op.origin) + " signed op seq " + std::to_string(op.seq) +
         " on top of another op than the held seq " + std::to_string(head_seq);
}

}  // namespace

void VerifiedSignatures::add(const sync::Hash32& hash, const crypto::PublicKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!by_hash_.emplace(hash, key).second) return;
  order_.push_back(hash);
  while (order_.size() > kEntriesMax) {
    by_hash_.erase(order_.front());
    order_.pop_front();
  }
}

bool VerifiedSignatures::take(const sync::Hash32& hash, const crypto::PublicKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end() || !crypto::ct_equal(it->second, key)) return false;
  by_hash_.erase(it);  // its place in order_ goes when it reaches the front
  return true;
}

Status Ledger::verify_received(const sync::SignedOp& sop, const crypto::PublicKey& key) {
  // An entry of the fast path vouches only for the exact bytes it was made for: the hash is
  // recomputed from the bytes about to be stored, never taken from the op's own `hash` field.
  if (verified_) {
    const sync::Hash32 hash = sync::op_hash(sop.signed_bytes, sop.sig);
    if (crypto::ct_equal(hash, sop.hash) && verified_->take(hash, key)) return Status::ok();
  }
  return sync::verify_op(sop, key);
}

Result<sync::IngestReport> Ledger::ingest(const std::vector<sync::SignedOp>& ops,
                                          const std::optional<sync::NodeId>& from) {
  IngestFindings found;
  auto report = ingest_batch(ops, found);
  // Recorded after the batch's savepoint rolled back, so they survive the refusal. A bad
  // signature is the sender's doing (the origin's key did not sign those bytes): the alert
  // names the sender, and the op only in its message.
  if (!report.is_ok() && found.bad_signature) {
    raise_alert("bad_signature", from ? sync::id_hex(*from) : "",
                "batch refused: " + report.status().message());
  }
  if (found.own_seq_proven > 0) {
    const std::string why = "a peer delivered this node's own op seq " +
                            std::to_string(found.own_seq_proven) + ", correctly signed";
    OUTPOST_RETURN_IF_ERROR(raise_own_seq_floor(found.own_seq_proven, why));
  }
  if (report.is_ok()) OUTPOST_RETURN_IF_ERROR(lift_restore_wait_if_met());
  return report;
}

Result<sync::IngestReport> Ledger::ingest_batch(const std::vector<sync::SignedOp>& ops,
                                                IngestFindings& found) {
  OUTPOST_ASSIGN_OR_RETURN(storage::Savepoint sp, storage::Savepoint::begin(store_->db()));
  sync::IngestReport report;
  sync::Hlc newest{};
  std::vector<sync::SignedOp> evidence;
  std::set<NodeId> forked;  // origins shown to equivocate by this batch
  for (const auto& sop : ops) {
    const Op& op = sop.op;
    const std::string ref = sync::op_ref_string(op.origin, op.seq);
    if (forked.count(op.origin)) continue;  // the rest of a conflicting history: never applied
    OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(op.origin));
    // The held op's hash at a seq, for the rule's duplicate test (a read error fails the batch).
    Status read = Status::ok();
    const sync::HeldHash held = [&](std::uint64_t seq) -> std::optional<sync::Hash32> {
      auto got = store_->get_op(op.origin, seq);
      if (!got.is_ok()) read = got.status();
      if (!got.is_ok() || !*got) return std::nullopt;
      return (*got)->hash;
    };
    const sync::SignatureCheck check = [&](const crypto::PublicKey& key) {
      return verify_received(sop, key);
    };
    const sync::LogHead log_head{head.seq, head.hash};
    sync::LogRuling ruling =
        sync::judge_op(log_head, trust_in(*this, op.origin), op, sop.hash, held, check);
    if (ruling.verdict == sync::LogVerdict::kUnknownOrigin) {
      // A node enrolled after this daemon started is in the database's roster, not yet in ours.
      OUTPOST_ASSIGN_OR_RETURN(bool changed, refresh_roster());
      if (changed)
        ruling = sync::judge_op(log_head, trust_in(*this, op.origin), op, sop.hash, held, check);
    }
    OUTPOST_RETURN_IF_ERROR(read);
    // An op of our own origin at the next seq whose signature verified (applied, revoked or
    // forked) proves the chain holds that seq.
    if (op.origin == node_id_ && (ruling.verdict == sync::LogVerdict::kApply ||
                                  ruling.verdict == sync::LogVerdict::kRevoked ||
                                  ruling.verdict == sync::LogVerdict::kFork)) {
      found.own_seq_proven = std::max(found.own_seq_proven, op.seq);
    }
    switch (ruling.verdict) {
      case sync::LogVerdict::kApply:
        break;
      case sync::LogVerdict::kDuplicate:
        report.duplicates++;
        continue;
      case sync::LogVerdict::kEquivocation:
      case sync::LogVerdict::kFork:
        // Evidence, not a bad peer: skipping this origin instead of refusing the batch keeps the
        // other origins' ops flowing between honest nodes holding different forks.
        evidence.push_back(sop);
        report.equivocations.push_back(equivocation_finding(ruling.verdict, op, head.seq));
        forked.insert(op.origin);
        continue;
      case sync::LogVerdict::kUnknownOrigin:
      case sync::LogVerdict::kBadSignature:
        found.bad_signature = ruling.verdict == sync::LogVerdict::kBadSignature;
        if (ruling.at_held_seq) {
          return Status::corruption("op " + ref +
                                    " conflicts with the held op and has a bad signature");
        }
        if (!found.bad_signature)
          return Status::corruption("op " + ref + " is from an unknown origin");
        return ruling.signature;
      case sync::LogVerdict::kGap:
        // Our own op beyond a gap, correctly signed: we did sign that seq (restored from an older
        // copy), so it must not be signed again. Proof, unlike a HELLO's claim.
        if (op.origin == node_id_ && sync::verify_op(sop, key_.public_key()).is_ok()) {
          found.own_seq_proven = std::max(found.own_seq_proven, op.seq);
        }
        return Status::corruption("op " + ref + " leaves a gap after seq " +
                                  std::to_string(head.seq));
      case sync::LogVerdict::kRevoked:
        return Status::corruption("op " + ref + " is past its origin's revocation cut-off");
      case sync::LogVerdict::kMalformed:
        return Status::corruption(
            "op " + ref + " is malformed (seq 0, or a genesis op that names a previous op)");
    }
    OUTPOST_RETURN_IF_ERROR(store_->append_op(sop));
    if (op.origin == node_id_) OUTPOST_RETURN_IF_ERROR(remember_recovered_request(*store_, sop));
    report.applied++;
    if (op.hlc > newest) newest = op.hlc;
  }
  if (report.applied > 0) OUTPOST_RETURN_IF_ERROR(observe_hlc(*store_, newest));
  OUTPOST_RETURN_IF_ERROR(sp.release());
  // Evidence and alerts are recorded outside the all-or-nothing unit (they happen even when
  // nothing else in the batch applied).
  for (const auto& e : evidence) {
    OUTPOST_ASSIGN_OR_RETURN(
        bool fresh, store_->add_equivocation(e, static_cast<std::int64_t>(clock_.now_ms())));
    if (!fresh) continue;  // the same evidence again (a peer re-sending it): one alert is enough
    raise_alert("equivocation", sync::id_hex(e.op.origin),
                "two different ops signed for seq " + std::to_string(e.op.seq));
  }
  return report;
}

Status Ledger::check_fence(std::uint64_t own_head_seq) const {
  if (awaiting_peer_) {
    return Status::unavailable(
        "this node was restored from a backup and signs no op until it has heard from " +
        std::string(is_hq_ ? "a peer" : "HQ") +
        " which of its own ops the chain already holds (it must not reuse a seq); connect it, or "
        "see "
        "docs/operations.md \"Backup and restore\"");
  }
  if (own_head_seq < own_seq_floor_) {
    return Status::unavailable(
        "a peer holds this node's own ops up to seq " + std::to_string(own_seq_floor_) +
        " but this node holds only " + std::to_string(own_head_seq) +
        " (restored from an older copy?); it signs no op until it has received them");
  }
  return Status::ok();
}

Status Ledger::observe_peer_hello(const std::string& peer_name, bool peer_is_hq,
                                  std::uint64_t own_seq_at_peer) {
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  // A HELLO's vector is only a claim. HQ's (by its authenticated certificate) fences a store.
  // No store's claim fences anyone, HQ included: a rogue store could claim seqs it can never
  // deliver and stop a node for good. The ops themselves, correctly signed, fence (ingest).
  if (peer_is_hq && own_seq_at_peer > own_seq_floor_) {
    OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaOwnSeqFloor, std::to_string(own_seq_at_peer)));
    own_seq_floor_ = own_seq_at_peer;
  }
  if (own_seq_at_peer > head.seq) {
    raise_alert(
        "own_seq_behind", sync::id_hex(node_id_),
        peer_name + " says it holds this node's ops up to seq " + std::to_string(own_seq_at_peer) +
            ", this node only up to " + std::to_string(head.seq) +
            (peer_is_hq ? ": restored from an older copy? It signs nothing until it has them back"
                        : ": restored from an older copy, or a false claim (not HQ: fenced only "
                          "once it delivers them)"));
    log(LogLevel::kWarn, "a peer holds more of this node's own ops",
        {{"peer", peer_name},
         {"peer_seq", std::to_string(own_seq_at_peer)},
         {"own_seq", std::to_string(head.seq)},
         {"fenced", peer_is_hq ? "yes" : "no"}});
  }
  if (!awaiting_peer_) return Status::ok();
  if (!peer_is_hq && !is_hq_) return Status::ok();  // a store waits for HQ itself
  if (!peer_is_hq && own_seq_at_peer > head.seq) {
    // HQ restored: this peer holds more of HQ's ops. Wait until sync brought them back, so that
    // a false claim cannot end the wait (nor hold it: another peer's claim may end it).
    if (restore_claims_.size() < limits::kRosterNodesMax || restore_claims_.count(peer_name)) {
      restore_claims_[peer_name] = own_seq_at_peer;
    }
    return Status::ok();
  }
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaAwaitingPeer, "0"));
  awaiting_peer_ = false;
  restore_claims_.clear();
  log(LogLevel::kInfo, "restored node heard from a peer which of its own ops the chain holds",
      {{"peer", peer_name},
       {"peer_seq", std::to_string(own_seq_at_peer)},
       {"own_seq", std::to_string(head.seq)}});
  return Status::ok();
}

Status Ledger::lift_restore_wait_if_met() {
  if (!awaiting_peer_ || restore_claims_.empty()) return Status::ok();
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  for (const auto& [peer, claim] : restore_claims_) {
    if (claim > head.seq) continue;
    OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaAwaitingPeer, "0"));
    awaiting_peer_ = false;
    log(LogLevel::kInfo, "restored node got back its own ops a peer held",
        {{"peer", peer}, {"own_seq", std::to_string(head.seq)}});
    restore_claims_.clear();
    break;
  }
  return Status::ok();
}

Status Ledger::raise_own_seq_floor(std::uint64_t seq, const std::string& why) {
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  if (seq <= head.seq || seq <= own_seq_floor_) return Status::ok();
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaOwnSeqFloor, std::to_string(seq)));
  own_seq_floor_ = seq;
  raise_alert("own_seq_behind", sync::id_hex(node_id_),
              why + ", this node only up to " + std::to_string(head.seq) +
                  ": restored from an older copy? It signs nothing until it has them back");
  log(LogLevel::kWarn, "a peer delivered own ops this node does not hold",
      {{"own_seq_proven", std::to_string(seq)},
       {"own_seq", std::to_string(head.seq)},
       {"fenced", "yes"}});
  return Status::ok();
}

Result<FenceState> Ledger::fence_state() {
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  Status st = check_fence(head.seq);
  return FenceState{!st.is_ok(), awaiting_peer_, head.seq, own_seq_floor_,
                    st.is_ok() ? "" : st.message()};
}

Result<FenceState> Ledger::release_fence() {
  OUTPOST_ASSIGN_OR_RETURN(FenceState before, fence_state());
  OUTPOST_ASSIGN_OR_RETURN(storage::Transaction txn, store_->begin());
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaAwaitingPeer, "0"));
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaOwnSeqFloor, "0"));
  OUTPOST_RETURN_IF_ERROR(txn.commit());
  awaiting_peer_ = false;
  own_seq_floor_ = 0;
  return before;
}

Status Ledger::mark_restored(storage::Store& store) {
  return store.set_meta(kMetaAwaitingPeer, "1");
}

}  // namespace outpost::node
