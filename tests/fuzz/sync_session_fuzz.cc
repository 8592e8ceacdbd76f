// libFuzzer target for SyncSession (sync/session.h): one node's side of a sync link, over an
// in-memory SyncStore that checks ops as a real node does, by the rule book's log rule
// (signature under the world's roster key, revocation cut-off, seq and chain; a batch with a bad
// op changes nothing; a second op for a held seq, or a forked successor, is kept as evidence). The
// input is a script:
//   byte 0: which world node this is; byte 1: how many of its own ops it holds; byte 2: flags
//   then actions, each an action byte and its arguments (see Script::step): a raw message, or a
//   HELLO / OPS / ACK / BLOB / RIGHTS message built from the world's signed data (optionally with
//   one byte flipped), or a local pump / rights request / deferred answer.
// After every step: each message the session sends decodes, sends no op twice and no op the
// peer said it holds; a message that does not decode closes the session with a reason; a closed
// session sends and reports nothing more; the store's version vector never goes back.
// With OUTPOST_FUZZ_TRACE set, each step's messages, events and close reason are printed (to see
// what a crashing script did: OUTPOST_FUZZ_TRACE=1 build/fuzz/tests/fuzz/sync_session_fuzz FILE).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_world.h"
#include "outpost/sync/protocol.h"
#include "outpost/sync/rule_book.h"
#include "outpost/sync/session.h"

namespace {

using namespace outpost;
using fuzz::Bytes;
using fuzz::ByteView;
using fuzz::World;

std::uint64_t held(const sync::VersionVector& vv, const sync::NodeId& id) {
  auto it = vv.find(id);
  return it == vv.end() ? 0 : it->second;
}

sync::BlobMsg make_blob(sync::BlobKind kind, std::uint64_t version, const Bytes& body,
                        const crypto::Signature& sig) {
  sync::BlobMsg m;
  m.kind = kind;
  m.version = version;
  m.body = body;
  m.sig.assign(sig.begin(), sig.end());
  return m;
}

// A node's data in memory: one chained log per origin, the documents it holds, its own key.
class FuzzStore final : public sync::SyncStore {
 public:
  FuzzStore(std::size_t self, std::size_t own_ops, bool defer) : self_(self), defer_(defer) {
    const auto& log = fuzz::world().nodes[self].log;
    for (std::size_t i = 0; i < own_ops && i < log.size(); ++i) logs_[id()].push_back(log[i]);
    const World& w = fuzz::world();
    blobs_[sync::BlobKind::kRoster] =
        make_blob(sync::BlobKind::kRoster, 1, w.roster.body, w.roster.sig);
  }

  sync::NodeId self() const override { return id(); }

  Result<sync::VersionVector> version_vector() override {
    sync::VersionVector vv;
    for (const auto& [origin, log] : logs_) {
      if (!log.empty()) vv[origin] = log.size();
    }
    return vv;
  }

  Result<std::vector<sync::SignedOp>> ops_from(const sync::NodeId& origin, std::uint64_t from_seq,
                                               std::size_t max_ops) override {
    // Invariant: the session asks only for ops this node holds and the peer lacks.
    const auto& log = logs_[origin];
    FUZZ_CHECK(from_seq >= 1 && from_seq <= log.size() && max_ops >= 1);
    std::vector<sync::SignedOp> out;
    for (std::uint64_t s = from_seq; s <= log.size() && out.size() < max_ops; ++s) {
      out.push_back(log[s - 1]);
    }
    return out;
  }

  // Judges each op by the rule book's log rule, as a real node does, and maps its verdicts as the
  // ledger does: a batch with a bad op changes nothing; equivocation and forks are evidence, and
  // the rest of that origin's ops in the batch are skipped.
  Result<sync::IngestReport> ingest(const std::vector<sync::SignedOp>& ops) override {
    auto logs = logs_;  // all or nothing
    sync::IngestReport report;
    std::set<sync::NodeId> forked;
    for (const auto& op : ops) {
      const std::string ref = sync::op_ref_string(op.op.origin, op.op.seq);
      if (forked.count(op.op.origin)) continue;
      auto& log = logs[op.op.origin];
      sync::OriginTrust trust;
      trust.key = roster().signing_key(op.op.origin);
      if (const sync::Revocation* rev = roster().revocation(op.op.origin)) {
        trust.cutoff = rev->after_seq;
      }
      const sync::LogHead head{log.size(), log.empty() ? sync::Hash32{} : log.back().hash};
      const auto ruling = sync::judge_op(head, trust, op, [&](std::uint64_t seq) {
        return std::optional<sync::Hash32>(log[seq - 1].hash);
      });
      switch (ruling.verdict) {
        case sync::LogVerdict::kApply:
          log.push_back(op);
          report.applied++;
          break;
        case sync::LogVerdict::kDuplicate:
          report.duplicates++;
          break;
        case sync::LogVerdict::kEquivocation:
        case sync::LogVerdict::kFork:
          report.equivocations.push_back(ref);
          forked.insert(op.op.origin);
          break;
        case sync::LogVerdict::kUnknownOrigin:
          return Status::permission(ref + ": unknown origin");
        case sync::LogVerdict::kBadSignature:
          return Status::corruption(ref + ": bad signature");
        case sync::LogVerdict::kRevoked:
          return Status::permission(ref + ": revoked");
        case sync::LogVerdict::kGap:
          return Status::invalid(ref + ": gap");
        case sync::LogVerdict::kMalformed:
          return Status::invalid(ref + ": malformed");
      }
    }
    logs_ = std::move(logs);
    return report;
  }

  std::uint64_t blob_version(sync::BlobKind kind) override {
    auto it = blobs_.find(kind);
    return it == blobs_.end() ? 0 : it->second.version;
  }
  std::optional<sync::BlobMsg> blob(sync::BlobKind kind) override {
    auto it = blobs_.find(kind);
    if (it == blobs_.end()) return std::nullopt;
    return it->second;
  }
  Status offer_blob(const sync::BlobMsg& b) override {
    const World& w = fuzz::world();
    Status st = Status::ok();
    switch (b.kind) {
      case sync::BlobKind::kRoster: {
        auto r = sync::verify_roster(b.body, b.sig, w.root->public_key(), w.network);
        st = r.is_ok() ? sync::check_roster_successor(roster(), r->roster) : r.status();
        if (st.code() == Code::kRefused) return Status::ok();  // stale: ignored
        if (st.is_ok()) roster_ = std::move(r->roster);
        break;
      }
      case sync::BlobKind::kRules:
        st = sync::verify_rules(b.body, b.sig, w.root->public_key(), w.network).status();
        break;
      case sync::BlobKind::kTreeHeads:
        st = sync::verify_tree_head_set(b.body, b.sig, w.root->public_key()).status();
        break;
      default:  // a kind this store does not keep
        return Status::ok();
    }
    if (st.is_ok() && b.version > blob_version(b.kind)) blobs_[b.kind] = b;
    return st;
  }

  // Grants half of what is asked (nothing for an odd amount) with a move op signed here.
  Result<std::uint64_t> grant_rights(const sync::NodeId& to, const sync::MemberId& member,
                                     sync::Account account, std::uint64_t amount) override {
    if (amount % 2 == 1 || to == id()) return std::uint64_t{0};
    auto& log = logs_[id()];
    sync::Op op;
    op.kind = sync::OpKind::kMove;
    op.origin = id();
    op.seq = log.size() + 1;
    if (!log.empty()) op.prev = log.back().hash;
    op.hlc = {fuzz::kNowMs + op.seq * 1000, 0};
    op.member = member;
    op.account = account;
    op.amount = amount / 2;
    op.target = to;
    if (!sync::validate_op(op).is_ok()) return Status::invalid("no move of that shape");
    log.push_back(sync::sign_op(op, *fuzz::world().nodes[self_].key));
    return op.amount;
  }
  bool defer_rights_requests() const override { return defer_; }

  const sync::Roster& roster() const { return roster_ ? *roster_ : fuzz::world().roster.roster; }
  const sync::SignedOp* op(const sync::NodeId& origin, std::uint64_t seq) {
    const auto& log = logs_[origin];
    return seq >= 1 && seq <= log.size() ? &log[seq - 1] : nullptr;
  }

 private:
  sync::NodeId id() const { return fuzz::world().nodes[self_].id; }

  std::size_t self_;
  bool defer_;
  std::map<sync::NodeId, std::vector<sync::SignedOp>> logs_;
  std::map<sync::BlobKind, sync::BlobMsg> blobs_;
  std::optional<sync::Roster> roster_;
};

// Runs one script against a session and checks the invariants after every step.
class Script {
 public:
  Script(ByteView input, std::size_t self, std::size_t own_ops, bool defer)
      : in_(input), store_(self, own_ops, defer), session_(store_) {}

  void run() {
    check(session_.start(now_), false);
    for (int steps = 0; steps < 256 && in_.remaining() > 0; ++steps) {
      if (!step()) break;
    }
  }

 private:
  // One action; false when the input ran out.
  bool step() {
    std::uint8_t action = 0;
    if (!in_.u8(action)) return false;
    now_ += 250;
    switch (action % 9) {
      case 0:
        return raw();
      case 1:
        return hello();
      case 2:
        return ops();
      case 3:
        return ack();
      case 4:
        return blob();
      case 5:
        return rights();
      case 6:
        return small_message();
      case 7:
        check(session_.pump(), false);
        return true;
      default:
        return local_rights();
    }
  }

  bool raw() {
    std::uint16_t len = 0;
    if (!in_.u16(len)) return false;
    Bytes b(std::min<std::size_t>(len, in_.remaining()));
    if (!in_.raw(b)) return false;
    deliver(b);
    return true;
  }

  // A world node's id by index; index 4 is an id no roster lists.
  static sync::NodeId node_id(std::uint8_t index) {
    const World& w = fuzz::world();
    index %= w.nodes.size() + 1;
    return index < w.nodes.size() ? w.nodes[index].id : fuzz::run_from<16>(0xee);
  }

  bool vv(sync::VersionVector& out) {
    std::uint8_t mask = 0;
    if (!in_.u8(mask)) return false;
    for (std::uint8_t i = 0; i < 5; ++i) {
      std::uint8_t seq = 0;
      if ((mask >> i) & 1) {
        if (!in_.u8(seq)) return false;
        out[node_id(i)] = seq;
      }
    }
    return true;
  }

  bool hello() {
    sync::HelloMsg h;
    std::uint8_t who = 0, versions = 0;
    if (!in_.u8(who) || !vv(h.vv) || !in_.u8(versions)) return false;
    h.node = node_id(who);
    h.roster_version = versions & 3;
    h.rules_version = (versions >> 2) & 3;
    h.tree_heads_version = (versions >> 4) & 3;
    h.wall_ms = now_;
    h.software_version = "fuzz";
    h.schema_version = versions >> 6;
    return send_built(h);
  }

  bool ops() {
    std::uint8_t origin = 0, from = 0, count = 0;
    if (!in_.u8(origin) || !in_.u8(from) || !in_.u8(count)) return false;
    const auto& log = fuzz::world().nodes[origin % fuzz::world().nodes.size()].log;
    sync::OpsMsg m;
    for (std::size_t s = from % log.size(); s < log.size() && m.ops.size() < count % 9u; ++s) {
      m.ops.push_back(log[s]);
    }
    if (count & 0x80) std::reverse(m.ops.begin(), m.ops.end());
    return send_built(m);
  }

  bool ack() {
    sync::AckMsg m;
    return vv(m.vv) && send_built(m);
  }

  bool blob() {
    std::uint8_t which = 0;
    if (!in_.u8(which)) return false;
    const World& w = fuzz::world();
    switch (which % 4) {
      case 0:
        return send_built(make_blob(sync::BlobKind::kRoster, 1, w.roster.body, w.roster.sig));
      case 1:
        return send_built(make_blob(sync::BlobKind::kRoster, 2, w.roster_v2.body, w.roster_v2.sig));
      case 2:
        return send_built(make_blob(sync::BlobKind::kRules, 1, w.rules.body, w.rules.sig));
      default:
        return send_built(
            make_blob(sync::BlobKind::kTreeHeads, 1, w.tree_heads.body, w.tree_heads.sig));
    }
  }

  bool rights() {
    sync::RightsRequestMsg m;
    std::uint8_t id = 0, member = 0, account = 0, amount = 0;
    if (!in_.u8(id) || !in_.u8(member) || !in_.u8(account) || !in_.u8(amount)) return false;
    m.request_id = id;
    m.member = World::member_of(member % 4);
    m.account = account % 2 ? sync::Account::kPoints : sync::Account::kWallet;
    m.amount = amount;  // 0 does not decode: the session must close
    return send_built(m);
  }

  bool small_message() {
    std::uint8_t which = 0, value = 0;
    if (!in_.u8(which) || !in_.u8(value)) return false;
    if (which % 2 == 0) {
      sync::RightsReplyMsg m;
      m.request_id = value;
      m.granted = value;
      m.reason = "reply";
      return send_built(m);
    }
    sync::ErrorMsg m;
    m.code = value;
    m.message = value % 2 ? "" : "peer gives up";
    return send_built(m);
  }

  bool local_rights() {
    std::uint8_t which = 0, value = 0;
    if (!in_.u8(which) || !in_.u8(value)) return false;
    if (which % 2 == 0) {
      check(session_.request_rights(value, World::member_of(value % 4), sync::Account::kWallet,
                                    std::uint64_t{value} + 1),
            false);
    } else {
      check(session_.answer_rights(value, value / 2, value % 2 ? "" : "partly"), false);
    }
    return true;
  }

  // Encodes `m`, flips one byte of it when the next input byte says so, and delivers it.
  bool send_built(const sync::Message& m) {
    std::uint8_t flip = 0;
    if (!in_.u8(flip)) return false;
    Bytes b = sync::encode_message(m);
    if (flip & 0x80) b[(flip & 0x7f) * 7u % b.size()] ^= 0x01;
    deliver(b);
    return true;
  }

  void deliver(const Bytes& b) {
    const bool decodes = sync::decode_message(b).is_ok();
    check(session_.on_message(b, now_), !decodes);
  }

  void check(const sync::SessionOutput& out, bool bad_input) {
    if (trace_) print(out);
    if (closed_) {
      FUZZ_CHECK(out.send.empty() && out.events.empty() && !out.close);
      return;
    }
    if (bad_input) FUZZ_CHECK(out.close);
    if (out.close) FUZZ_CHECK(!out.close_reason.empty());
    if (!peer_hello_ && session_.established()) peer_hello_ = session_.peer_vv();
    for (const Bytes& b : out.send) check_sent(b);
    closed_ = out.close;
    auto vv = store_.version_vector();
    FUZZ_CHECK(vv.is_ok());
    for (const auto& [origin, seq] : vv_) FUZZ_CHECK(held(*vv, origin) >= seq);
    vv_ = std::move(vv).value();
  }

  static void print(const sync::SessionOutput& out) {
    std::fprintf(stderr, "step:");
    for (const Bytes& b : out.send) {
      auto m = sync::decode_message(b);
      std::fprintf(stderr, " send %s", m.is_ok() ? sync::message_name(*m) : "(undecodable)");
      if (const auto* ops = m.is_ok() ? std::get_if<sync::OpsMsg>(&*m) : nullptr) {
        std::fprintf(stderr, "[%zu]", ops->ops.size());
      }
    }
    for (const auto& e : out.events) {
      std::fprintf(stderr, " event %d (applied %llu, duplicates %llu, equivocations %zu)",
                   static_cast<int>(e.kind), static_cast<unsigned long long>(e.ingest.applied),
                   static_cast<unsigned long long>(e.ingest.duplicates),
                   e.ingest.equivocations.size());
    }
    if (out.close) std::fprintf(stderr, " close: %s", out.close_reason.c_str());
    std::fprintf(stderr, "\n");
  }

  void check_sent(const Bytes& b) {
    auto msg = sync::decode_message(b);
    FUZZ_CHECK(msg.is_ok());
    FUZZ_CHECK(sync::encode_message(*msg) == b);
    const auto* ops = std::get_if<sync::OpsMsg>(&*msg);
    if (ops == nullptr) return;
    FUZZ_CHECK(!ops->ops.empty() && ops->ops.size() <= limits::kSyncBatchOpsMax);
    for (const auto& op : ops->ops) {
      const auto key = std::make_pair(op.op.origin, op.op.seq);
      FUZZ_CHECK(sent_.insert(key).second);  // never the same op twice in one session
      FUZZ_CHECK(!peer_hello_ || op.op.seq > held(*peer_hello_, op.op.origin));
      const sync::SignedOp* mine = store_.op(op.op.origin, op.op.seq);
      FUZZ_CHECK(mine != nullptr && mine->hash == op.hash);
    }
  }

  sync::ByteReader in_;
  FuzzStore store_;
  sync::SyncSession session_;
  std::uint64_t now_ = fuzz::kNowMs;
  const bool trace_ = std::getenv("OUTPOST_FUZZ_TRACE") != nullptr;
  bool closed_ = false;
  sync::VersionVector vv_;
  std::optional<sync::VersionVector> peer_hello_;  // the vv of the peer's accepted HELLO
  std::set<std::pair<sync::NodeId, std::uint64_t>> sent_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size < 3) return 0;
  const World& w = fuzz::world();
  Script script(ByteView(bytes + 3, size - 3), bytes[0] % w.nodes.size(), bytes[1] % 9,
                (bytes[2] & 1) != 0);
  script.run();
  return 0;
}
