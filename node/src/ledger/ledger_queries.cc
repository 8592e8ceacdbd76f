// Ledger's read-only answers (outpost/node/ledger.h; the files of Ledger are listed in
// ledger_internal.h): finding members, a member's state and history, the node's status and
// rules, and `outpost log verify`, which re-judges every held op by the log rule and replays the
// log against the stored state.
#include <algorithm>
#include <set>

#include "ledger_internal.h"
#include "outpost/node/ledger.h"
#include "outpost/sync/member_rules.h"
#include "outpost/sync/replica.h"

namespace outpost::node {

using ledger_internal::account_view;
using ledger_internal::trust_in;
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;

Result<MemberId> Ledger::resolve_member(const std::string& id_or_card) {
  if (id_or_card.size() == 32) {
    auto id = sync::parse_id(id_or_card);
    if (id.is_ok()) return *id;
  }
  if (validate_card(id_or_card).is_ok()) {
    OUTPOST_ASSIGN_OR_RETURN(auto found, store_->find_members(Field::kCard, id_or_card));
    if (found.empty()) return Status::not_found("no member with card " + id_or_card);
    return found.front();
  }
  return Status::invalid("member must be a 32-hex-digit id or a card number, got '" + id_or_card +
                         "'");
}

Result<std::vector<MemberId>> Ledger::find_by_card(const std::string& card) {
  OUTPOST_RETURN_IF_ERROR(validate_card(card));
  return store_->find_members(Field::kCard, card);
}

Result<std::vector<MemberId>> Ledger::find_by_phone(const std::string& phone) {
  OUTPOST_RETURN_IF_ERROR(validate_phone(phone));
  return store_->find_members(Field::kPhone, phone);
}

Result<MemberView> Ledger::member_view(const MemberId& member) {
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m || !m->fields.count(Field::kCard))
    return Status::not_found("unknown member " + sync::id_hex(member));
  MemberView v;
  v.id = member;
  v.card = m->field(Field::kCard);
  v.name = m->field(Field::kName);
  v.phone = m->field(Field::kPhone);
  v.birthday = m->field(Field::kBirthday);
  v.home_store = m->field(Field::kHomeStore);
  v.status = m->field(Field::kStatus);
  v.pin_set = !m->field(Field::kPinHash).empty();
  const sync::PinLock lock = sync::pin_lock(*m, clock_.now_ms());
  v.pin_failures = lock.failures;
  v.pin_locked_until_ms = lock.locked_until_ms;
  std::uint32_t month = sync::month_index(clock_.now_ms());
  v.rolling_spend_minor = m->rolling_spend(month, rules_.window_months);
  v.tier = rules_.tier_for(v.rolling_spend_minor).name;
  v.visits = m->visits.total();
  v.points = account_view(m->points, node_id_);
  v.wallet = account_view(m->wallet, node_id_);
  return v;
}

Result<std::vector<HistoryEntry>> Ledger::history(const MemberId& member, std::size_t limit) {
  limit = std::min(limit, limits::kHistoryRowsMax);
  OUTPOST_ASSIGN_OR_RETURN(auto ops, store_->ops_of_member(member, limit));
  if (ops.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
    if (!m) return Status::not_found("unknown member " + sync::id_hex(member));
  }
  std::vector<HistoryEntry> out;
  out.reserve(ops.size());
  for (auto& op : ops) {
    OUTPOST_ASSIGN_OR_RETURN(auto by, store_->reversed_by(op.op.origin, op.op.seq));
    out.push_back(HistoryEntry{std::move(op), by});
  }
  return out;
}

Result<NodeStatus> Ledger::node_status() {
  NodeStatus s;
  s.node_id = node_id_;
  s.name = node_name_;
  OUTPOST_ASSIGN_OR_RETURN(auto role, store_->get_meta("role"));
  s.role = role.value_or("store");
  s.signing_public_key = key_.public_key();
  OUTPOST_ASSIGN_OR_RETURN(s.version_vector, store_->version_vector());
  OUTPOST_ASSIGN_OR_RETURN(s.ops, store_->op_count());
  s.schema_version = storage::kSchemaVersion;
  s.rules_version = rules_.version;
  s.rules_source = rules_source_;
  OUTPOST_ASSIGN_OR_RETURN(s.seq_fence, fence_state());
  return s;
}

namespace {

// `log verify`'s check of one stored op of `origin` by the log rule, against the ops before it
// (`expect`: the seq that should come next; `prev`: the hash of the op before). Findings go to
// `report`; a gap is reported, and the op is then judged as if the log went on from it. Advances
// `expect` and `prev` past the op.
void check_stored_op(const NodeId& origin, const sync::OriginTrust& trust,
                     const sync::SignedOp& sop, std::uint64_t& expect, sync::Hash32& prev,
                     VerifyReport& report) {
  const std::string ref = sync::op_ref_string(origin, sop.op.seq);
  report.ops_checked++;
  if (sop.op.origin != origin) report.findings.push_back(ref + ": origin field differs");
  sync::LogRuling ruling = sync::judge_op({expect - 1, prev}, trust, sop, nullptr);
  if (ruling.verdict == sync::LogVerdict::kGap || ruling.at_held_seq) {
    report.findings.push_back(ref + ": gap, expected seq " + std::to_string(expect));
    ruling = sync::judge_op({sop.op.seq - 1, prev}, trust, sop, nullptr);
  }
  switch (ruling.verdict) {
    case sync::LogVerdict::kApply:
    case sync::LogVerdict::kUnknownOrigin:  // the origin's finding says it once
    case sync::LogVerdict::kDuplicate:      // not after a re-judge at the op's own seq
    case sync::LogVerdict::kEquivocation:
    case sync::LogVerdict::kGap:
      break;
    case sync::LogVerdict::kBadSignature:
      report.findings.push_back(ref + ": " + ruling.signature.message());
      break;
    case sync::LogVerdict::kRevoked:
      report.findings.push_back(ref + ": after its origin's revocation cutoff (seq " +
                                std::to_string(*trust.cutoff) + ")");
      break;
    case sync::LogVerdict::kFork:
      report.findings.push_back(ref + ": prev does not match the previous op's hash");
      break;
    case sync::LogVerdict::kMalformed:
      report.findings.push_back(ref +
                                ": malformed (seq 0, or a genesis op that names a previous op)");
      break;
  }
  prev = sop.hash;
  expect = sop.op.seq + 1;
}

}  // namespace

Result<VerifyReport> Ledger::verify_log() {
  VerifyReport report;
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  sync::Replica replica;
  constexpr std::size_t kBatch = 512;
  for (const auto& [origin, head_seq] : vv) {
    report.origins++;
    const sync::OriginTrust trust = trust_in(*this, origin);
    if (!trust.key) {
      report.findings.push_back("origin " + sync::id_hex(origin) + ": no known public key");
    }
    sync::Hash32 prev{};
    std::uint64_t expect = 1;
    while (expect <= head_seq) {
      auto read = store_->ops_of_origin(origin, expect, kBatch);
      if (!read.is_ok() && read.status().code() != Code::kCorruption) return read.status();
      std::vector<sync::SignedOp> batch;
      std::uint64_t stretch_end = 0;  // set when read op by op: the next read starts after it
      if (read.is_ok()) {
        batch = std::move(read).value();
      } else {
        // A stored op that no longer decodes: read this stretch one op at a time so the finding
        // names it, and go on with the rest of the log.
        const std::uint64_t last = std::min<std::uint64_t>(head_seq, expect + kBatch - 1);
        stretch_end = last;
        for (std::uint64_t seq = expect; seq <= last; ++seq) {
          auto one = store_->get_op(origin, seq);
          if (one.is_ok() && *one) {
            batch.push_back(std::move(**one));
          } else if (!one.is_ok()) {
            report.ops_checked++;
            report.findings.push_back(sync::op_ref_string(origin, seq) +
                                      ": stored op cannot be decoded: " + one.status().message());
          }
        }
        if (batch.empty()) {
          expect = last + 1;
          prev = {};
          continue;
        }
      }
      if (batch.empty()) break;
      for (const auto& sop : batch) {
        check_stored_op(origin, trust, sop, expect, prev, report);
        auto applied = replica.apply(sop.op);
        if (!applied.is_ok()) {
          report.findings.push_back(sync::op_ref_string(origin, sop.op.seq) + ": " +
                                    applied.status().message());
        }
      }
      if (stretch_end != 0) expect = std::max(expect, stretch_end + 1);
    }
    if (expect != head_seq + 1) {
      report.findings.push_back("origin " + sync::id_hex(origin) + ": log ends at seq " +
                                std::to_string(expect - 1) + " but head says " +
                                std::to_string(head_seq));
    }
    OUTPOST_ASSIGN_OR_RETURN(storage::Head h, store_->head(origin));
    if (h.hash != prev)
      report.findings.push_back("origin " + sync::id_hex(origin) +
                                ": head hash does not match the last op");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store_->load_all_members());
  std::set<MemberId> ids;
  for (const auto& [id, m] : stored) ids.insert(id);
  for (const auto& [id, m] : replica.members()) ids.insert(id);
  for (const auto& id : ids) {
    report.members_compared++;
    const MemberState* replayed = replica.member(id);
    auto it = stored.find(id);
    if (!replayed || it == stored.end() || !(it->second == *replayed)) {
      std::string detail;
      if (replayed && it != stored.end()) {
        detail = " (stored points " + std::to_string(it->second.points.value()) + ", wallet " +
                 std::to_string(it->second.wallet.value()) + "; replayed points " +
                 std::to_string(replayed->points.value()) + ", wallet " +
                 std::to_string(replayed->wallet.value()) + ")";
      }
      report.findings.push_back("member " + sync::id_hex(id) +
                                ": stored state differs from the replay of the log" + detail);
    }
  }
  return report;
}

}  // namespace outpost::node
