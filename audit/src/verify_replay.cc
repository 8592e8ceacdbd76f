// Stages 6 and 7 of the verifier (verifier.h): the replay of the accepted ops through
// sync::Replica (the rule book's apply_effects) in HLC order, with value and rights checked after
// every op that lowers rights, and balances.json against the replayed state.
#include <queue>

#include "outpost/audit/bundle_format.h"
#include "verifier.h"

namespace outpost::audit::internal {

namespace {

// JSON equality where an object's key order does not matter (balances.json is written by any
// exporter; JSON objects are unordered). Arrays still compare in order.
bool same_json(const Json& a, const Json& b) {
  if (!a.is_object() || !b.is_object()) {
    if (!a.is_array() || !b.is_array()) return a == b;
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_json(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.size() != b.size()) return false;
  for (auto it = a.begin(); it != a.end(); ++it) {
    auto other = b.find(it.key());
    if (other == b.end() || !same_json(*it, *other)) return false;
  }
  return true;
}

}  // namespace

// 6. Replay in HLC order. HLC is a linear extension of causality (a node that held an op when it
// signed another gave the second a greater HLC), so every op is applied after everything its
// origin could have seen: a debit comes after the move that funded it. The origin checked
// rights(origin) >= amount in its own view, which this state can only exceed; so rights and
// value must be >= 0 after every op, not just at the end.
void Verifier::replay() {
  using Key = std::tuple<sync::Hlc, NodeId, std::uint64_t, OriginLog*, std::size_t>;
  std::priority_queue<Key, std::vector<Key>, std::greater<>> heap;
  for (const auto& log : logs_) {
    replay_total_ += log->replay.size();
    if (!log->replay.empty()) {
      const Op& op = log->replay[0]->op;
      heap.emplace(op.hlc, op.origin, op.seq, log.get(), 0);
    }
  }
  while (!heap.empty()) {
    auto [hlc, origin, seq, log, i] = heap.top();
    heap.pop();
    const OpEntry* e = log->replay[i];
    const Op& op = e->op;
    auto applied = replica_.apply(op);
    if (!applied.is_ok()) {
      add_op(*log, "replay_refused", op.seq, &op.member, applied.status().message());
      for (std::size_t k = i; k < log->replay.size(); ++k) taint(log->replay[k]->op.member);
      continue;  // the origin's later ops cannot follow a refused one
    }
    after_apply(*log, op, /*streamed=*/false);
    if (i + 1 < log->replay.size()) {
      const Op& nx = log->replay[i + 1]->op;
      heap.emplace(nx.hlc, nx.origin, nx.seq, log, i + 1);
    }
  }
  progress("replay", replayed_, replay_total_);
  check_final_state();
}

// After the replica applied `op`: the rights and value check of a rights-lowering op, and the
// trace line of the traced member. The serial replay checks at once (taints are final by then);
// the pipeline keeps the samples below zero for finish_streamed_replay(), which filters them by
// the taints the later stages find, in the same order.
void Verifier::after_apply(const OriginLog& log, const Op& op, bool streamed) {
  ++replayed_;
  if (!streamed && replayed_ % kProgressEveryOps == 0) progress("replay", replayed_, replay_total_);
  const sync::MemberState* m = replica_.member(op.member);
  OUTPOST_CHECK(m != nullptr);
  const bool check = op.account != sync::Account::kNone && sync::lowers_rights(op);
  if (check && (streamed || !tainted(op.member))) {
    const sync::EscrowCounter& c = m->counter(op.account);
    const RightsSample s{&log,     op.seq, op.member, op.account, op.origin, c.rights(op.origin),
                         c.value()};
    if (!streamed) {
      report_negative(s);
    } else if (s.rights < 0 || s.value < 0) {
      negative_samples_.push_back(s);
    }
  }
  if (opt_.trace_member && op.member == *opt_.trace_member) {
    TraceLine t;
    t.op = sync::op_ref_string(op.origin, op.seq);
    t.origin_name = log.entry.name;
    t.hlc = op.hlc;
    t.kind = sync::kind_name(op.kind);
    t.amount = op.amount;
    if (op.account != sync::Account::kNone) {
      t.account = sync::account_name(op.account);
      t.delta = sync::value_change(op);
      const sync::EscrowCounter& c = m->counter(op.account);
      t.rights_at_origin = c.rights(op.origin);
    }
    if (op.kind == OpKind::kMove) t.detail = "rights to " + sync::id_hex(op.target);
    if (op.kind == OpKind::kReverse) {
      t.detail = "reverses " + sync::op_ref_string(op.ref_origin, op.ref_seq);
    }
    if (op.kind == OpKind::kEarn) t.detail = "purchase " + std::to_string(op.spend_minor);
    for (const auto& f : op.fields) {
      t.detail += (t.detail.empty() ? "" : ", ") + std::string(sync::field_name(f.field)) +
                  (f.field == sync::Field::kPinHash ? "=(set)" : "=" + f.value);
    }
    t.points = m->points.value();
    t.wallet = m->wallet.value();
    report_.trace.push_back(std::move(t));
  }
}

// Reports rights or a value below zero; each (member, account, node) violation once, where it
// first appears.
void Verifier::report_negative(const RightsSample& s) {
  const std::string where = s.log ? " after this op" : " in the final state";
  const std::string origin = s.log ? s.log->hex : sync::id_hex(s.node);
  const std::string file = s.log ? s.log->entry.file : "";
  const std::string acct = sync::account_name(s.account);
  if (s.rights < 0 && reported_.emplace(s.member, s.account, s.node, 0).second) {
    add("negative_rights", origin, s.seq, sync::id_hex(s.member), file,
        acct + " rights of node " + sync::id_hex(s.node) + " are " + std::to_string(s.rights) +
            where + ": it spent or moved more than it held");
  }
  if (s.value < 0 && reported_.emplace(s.member, s.account, NodeId{}, 1).second) {
    add("negative_value", s.log ? origin : "", s.seq, sync::id_hex(s.member), file,
        acct + " value is " + std::to_string(s.value) + where);
  }
}

// The final state: every account of every member, every node's rights.
void Verifier::check_final_state() {
  for (const auto& [id, m] : replica_.members()) {
    if (tainted(id)) continue;
    for (auto acct : {sync::Account::kPoints, sync::Account::kWallet}) {
      const sync::EscrowCounter& c = acct == sync::Account::kPoints ? m.points : m.wallet;
      for (const auto& [node, r] : c.rights_by_node()) {
        if (r < 0 || c.value() < 0) {
          report_negative(RightsSample{nullptr, 0, id, acct, node, r, c.value()});
        }
      }
    }
  }
  report_.counts["ops_replayed"] = replayed_;
  report_.counts["members_replayed"] = replica_.members().size();
}

// The pipeline replayed every op already: report its samples below zero as the serial replay
// would have (skipping members the later stages tainted), then the final state.
void Verifier::finish_streamed_replay() {
  for (const RightsSample& s : negative_samples_) {
    if (!tainted(s.member)) report_negative(s);
  }
  negative_samples_.clear();
  progress("replay", replayed_, replayed_);
  check_final_state();
}

// 7. balances.json against the replayed state.
void Verifier::check_balances() {
  const std::string file = bundle::kBalancesFile;
  if (!balances_.done) parse_balances();
  if (!balances_.read.is_ok()) {
    if (!listed_files_.count(file)) {
      add("file_missing", "", 0, "", file, "a complete bundle must hold " + file);
    }
    return;
  }
  if (!balances_.error.empty()) {
    add("malformed_file", "", 0, "", file, "not JSON: " + balances_.error);
    return;
  }
  const Json& j = balances_.doc;
  if (!j.is_object() || j.value("format", Json()) != bundle::kBalancesFormat ||
      !j.contains("members") || !j["members"].is_array()) {
    add("malformed_file", "", 0, "", file,
        "not an " + std::string(bundle::kBalancesFormat) + " file with a members array");
    return;
  }
  std::map<MemberId, Json> exported;
  for (const auto& m : j["members"]) {
    auto hex = internal::json_string(m, "member", "balances entry");
    auto id = hex.is_ok() ? sync::parse_id(*hex) : Result<NodeId>(hex.status());
    if (!id.is_ok()) {
      add("malformed_file", "", 0, "", file, "an entry has no valid member id: " + m.dump());
      continue;
    }
    if (!exported.emplace(*id, m).second) {
      add("balance_mismatch", "", 0, *hex, file, "the member is listed twice");
    }
  }
  std::uint64_t compared = 0, skipped = 0;
  std::set<MemberId> ids;
  for (const auto& [id, m] : exported) ids.insert(id);
  for (const auto& [id, m] : replica_.members()) ids.insert(id);
  for (const MemberId& id : ids) {
    const std::string hex = sync::id_hex(id);
    const sync::MemberState* m = replica_.member(id);
    Json mine = m ? bundle::balance_json(id, *m) : Json();
    auto it = exported.find(id);
    if (opt_.trace_member && id == *opt_.trace_member) {
      report_.traced_final = mine;
      report_.traced_exported = it == exported.end() ? Json() : it->second;
    }
    if (tainted(id)) {
      ++skipped;
      continue;
    }
    ++compared;
    if (it == exported.end()) {
      add("balance_mismatch", "", 0, hex, file,
          "the ops give this member a state but balances.json does not list it");
      continue;
    }
    if (!m) {
      add("balance_mismatch", "", 0, hex, file,
          "balances.json lists this member but no accepted op touches it");
      continue;
    }
    std::string diff;
    for (const char* key : {"points", "wallet", "spend_by_month", "spend_reversed_by_month",
                            "visits_by_month", "card"}) {
      const Json got = it->second.contains(key) ? it->second[key] : Json();
      if (!same_json(got, mine[key])) {
        diff += std::string(diff.empty() ? "" : "; ") + key + ": exported " + got.dump() +
                ", recomputed " + mine[key].dump();
      }
    }
    if (!diff.empty()) add("balance_mismatch", "", 0, hex, file, diff);
  }
  report_.counts["members_compared"] = compared;
  report_.counts["members_not_compared"] = skipped;
  if (skipped > 0) {
    report_.notes.push_back(std::to_string(skipped) +
                            " member(s) not compared: an op of theirs "
                            "was rejected (see findings), so their exported state cannot match");
  }
}

}  // namespace outpost::audit::internal
