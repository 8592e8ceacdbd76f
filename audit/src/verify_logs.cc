// Stage 4 of the verifier (verifier.h): each origin's log walked in seq order, judged by the rule
// book's log rule (sync::judge_op) as a node would ingest it, plus what only a complete log file
// shows (order in the file, duplicates, HLC, request ids, reversals); and HQ's equivocation
// evidence.
#include <algorithm>
#include <span>
#include <string_view>
#include <unordered_map>

#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "verifier.h"

namespace outpost::audit::internal {

namespace {

// The log rule's signature check of an entry: the verdict the workers of stage 3 recorded.
sync::SignatureCheck checked_by_workers(const OpEntry& e) {
  return [&e](const crypto::PublicKey&) {
    return e.status == OpStatus::kOk ? Status::ok() : Status::corruption("bad signature");
  };
}

}  // namespace

sync::OriginTrust trust_of(const OriginLog& log) { return sync::OriginTrust{log.key, log.cutoff}; }

sync::LogRuling judge_entry(const OriginLog& log, const sync::LogHead& head, const OpEntry& e) {
  return sync::judge_op(head, trust_of(log), e.op, e.hash, nullptr, checked_by_workers(e));
}

std::optional<std::pair<std::string, std::string>> Verifier::reversal_finding(
    const OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed) const {
  const Op& op = e.op;
  if (!reversed.insert(op.ref_seq).second) {
    return std::make_pair("double_reversal", "reverses op " + std::to_string(op.ref_seq) +
                                                 ", which an earlier op already reversed");
  }
  if (op.ref_seq < log.entry.first_seq) return std::nullopt;  // before the range: not checkable
  const std::size_t idx = op.ref_seq - log.entry.first_seq;
  const OpEntry* ref = idx < log.chosen.size() ? log.chosen[idx] : nullptr;
  if (ref == nullptr || ref->status != OpStatus::kOk) return std::nullopt;  // a finding there
  const Op& r = ref->op;
  std::string why;
  switch (sync::match_reversal(op, r)) {
    case sync::ReversalMatch::kExact:
      return std::nullopt;
    case sync::ReversalMatch::kWrongKind:
      why = "names kind " + std::string(sync::kind_name(op.ref_kind)) + " but op " +
            std::to_string(op.ref_seq) + " is a " + sync::kind_name(r.kind);
      break;
    case sync::ReversalMatch::kNotExact:
      why = "does not undo op " + std::to_string(op.ref_seq) +
            " exactly (member, account, amount or purchase differ)";
      break;
  }
  return std::make_pair("bad_reversal", "reversal " + why);
}

void Verifier::check_reversal(OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed,
                              bool& reject) {
  auto finding = reversal_finding(log, e, reversed);
  if (!finding) return;
  add_op(log, finding->first, e.op.seq, &e.op.member, finding->second);
  reject = true;
}

// 4. One origin's log, walked in seq order: the per-op results of stage 3, the order in the file,
// then each seq's ops (check_seq).
void Verifier::check_log(OriginLog& log) {
  report_entry_statuses(log);
  check_file_order(log);
  std::vector<const OpEntry*> sorted;
  sorted.reserve(log.frames.size());
  for_each_entry(log, [&](const OpEntry& e) {
    if (e.seq != 0) sorted.push_back(&e);
  });
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const OpEntry* a, const OpEntry* b) { return a->seq < b->seq; });
  LogWalk walk;
  walk.expect = log.entry.first_seq;
  walk.request_ids.reserve(log.frames.size());
  for (std::size_t i = 0; i < sorted.size();) {
    const std::uint64_t s = sorted[i]->seq;
    std::size_t j = i;
    while (j < sorted.size() && sorted[j]->seq == s) ++j;
    std::size_t k = j;
    while (k < sorted.size() && sorted[k]->seq == sorted[j]->seq) ++k;
    check_seq(log, std::span<const OpEntry* const>(sorted.data() + i, j - i),
              std::span<const OpEntry* const>(sorted.data() + j, k - j), walk);
    i = j;
  }
}

// The per-op results of stage 3, in file order. An op that is not authenticated names no member
// that can be trusted (the member field may be the byte that was altered), so the missing op's
// effect may be on anyone's state: every member is tainted.
void Verifier::report_entry_statuses(OriginLog& log) {
  std::uint64_t unknown = 0;
  for_each_entry(log, [&](const OpEntry& e) {
    const MemberId* m = e.decoded ? &e.op.member : nullptr;
    switch (e.status) {
      case OpStatus::kOk:
        break;
      case OpStatus::kMalformed:
        add_op(log, "malformed_op", e.seq, nullptr,
               "frame at byte " + std::to_string(e.offset) + " is not a valid op: " + e.error);
        break;
      case OpStatus::kNonCanonical:
        add_op(log, "non_canonical_op", e.seq, m,
               "decodes, but re-encoding it gives other bytes: a signed op has one encoding");
        break;
      case OpStatus::kWrongOrigin:
        add_op(log, "wrong_origin_file", e.seq, m,
               "op of origin " + sync::id_hex(e.op.origin) + " in the log file of " + log.hex);
        break;
      case OpStatus::kUnknownOrigin:
        ++unknown;
        break;
      case OpStatus::kBadSignature:
        add_op(log, "bad_signature", e.seq, m,
               "the signature does not verify under the origin's certificate key "
               "(altered bytes, or signed by another key)");
        break;
    }
    if (e.status != OpStatus::kOk) {
      if (e.decoded) taint(e.op.member);
      taint_all_ = true;
      taint_all_reason_ = e.decoded ? "an op that is not authenticated (" + log.hex + ":" +
                                          std::to_string(e.seq) + ") names no trusted member"
                                    : "an op that does not decode names no member";
    }
  });
  if (unknown > 0) {
    add_op(log, "unknown_origin", log.entry.first_seq, nullptr,
           std::to_string(unknown) + " op(s) of origin " + log.hex +
               ", which no root-signed roster lists: they cannot be authenticated");
  }
  if (log.file_broken) {
    taint_all_ = true;
    taint_all_reason_ = log.entry.file + " is missing or cut short";
  }
}

// Order in the file: seqs must ascend. Sets log.max_seq.
void Verifier::check_file_order(OriginLog& log) {
  std::uint64_t max_seen = 0;
  for_each_entry(log, [&](const OpEntry& e) {
    if (e.seq == 0) return;
    if (e.seq < max_seen) {
      add_op(log, "out_of_order", e.seq, e.decoded ? &e.op.member : nullptr,
             "seq " + std::to_string(e.seq) + " comes after seq " + std::to_string(max_seen) +
                 " in the file: ops were reordered");
    }
    max_seen = std::max(max_seen, e.seq);
  });
  log.max_seq = max_seen;
}

// The ops of one seq (`group`; `next_group` holds the next seq's): a gap before them, several
// valid ones (equivocation, duplicates), and the one the chain continues from (check_chosen),
// which the replay takes while nothing was rejected before it.
void Verifier::check_seq(OriginLog& log, std::span<const OpEntry* const> group,
                         std::span<const OpEntry* const> next_group, LogWalk& walk) {
  const std::uint64_t s = group[0]->seq;
  const std::uint64_t first = log.entry.first_seq;
  if (s < first) {
    add_op(log, "out_of_order", s, group[0]->decoded ? &group[0]->op.member : nullptr,
           "seq " + std::to_string(s) + " precedes the first seq " + std::to_string(first) +
               " the manifest announces for this origin");
    return;
  }
  if (s > walk.expect) {
    add_op(log, "seq_gap", walk.expect, nullptr,
           s - walk.expect == 1 ? "op " + std::to_string(walk.expect) +
                                      " is missing (the log goes on at " + std::to_string(s) + ")"
                                : "ops " + std::to_string(walk.expect) + ".." +
                                      std::to_string(s - 1) + " are missing");
    log.gap = true;
    walk.prev = nullptr;
    // The missing ops' members are unknown, so no member's exported state can be trusted to
    // match a replay without them.
    taint_all_ = true;
    taint_all_reason_ = "a log has a gap: the missing ops' members are unknown";
  }
  const OpEntry* chosen = check_same_seq(log, group, next_group);
  const bool reject = chosen->status != OpStatus::kOk || check_chosen(log, *chosen, walk);
  if (!log.gap) log.chosen.push_back(chosen);
  if (walk.open && !log.gap && !reject) {
    log.replay.push_back(chosen);
  } else {
    walk.open = false;
  }
  if (!walk.open) {
    for (const OpEntry* e : group) {
      if (e->decoded) taint(e->op.member);
    }
  }
  walk.prev = chosen;
  walk.expect = s + 1;
}

// Equivocation and duplicates among the validly signed ops of one seq. Returns the op the chain
// continues from: the one the next seq's prev names, else the first valid one, else the first.
const OpEntry* Verifier::check_same_seq(OriginLog& log, std::span<const OpEntry* const> group,
                                        std::span<const OpEntry* const> next_group) {
  const std::uint64_t s = group[0]->seq;
  const OpEntry* first_valid = nullptr;
  std::size_t nvalid = 0;
  for (const OpEntry* e : group) {
    if (e->status != OpStatus::kOk) continue;
    if (first_valid == nullptr) first_valid = e;
    ++nvalid;
  }
  const OpEntry* chosen = first_valid ? first_valid : group[0];
  if (nvalid <= 1) return chosen;
  std::set<Hash32> hashes;
  for (const OpEntry* e : group) {
    if (e->status != OpStatus::kOk) continue;
    hashes.insert(e->hash);
    for (const OpEntry* n : next_group) {
      if (n->decoded && n->seq == s + 1 && n->op.prev == e->hash) chosen = e;
    }
  }
  if (hashes.size() > 1) {
    std::string list;
    for (const Hash32& h : hashes) list += (list.empty() ? "" : ", ") + crypto::to_hex(h);
    add_op(log, "equivocation", s, &first_valid->op.member,
           "the origin signed " + std::to_string(hashes.size()) +
               " different ops with this seq (hashes " + list + ")");
  }
  if (nvalid > hashes.size()) {
    add_op(
        log, "duplicate_op", s, &first_valid->op.member,
        "the same op appears " + std::to_string(nvalid - hashes.size() + 1) + " times in the file");
  }
  return chosen;
}

// The authenticated op the chain continues from at its seq, judged by the log rule against the
// op before it, then what the rule leaves to a complete log: HLC order, request ids, reversals.
// Each finding also keeps the op (and the rest of its origin) out of the replay: its effect is not
// one the origin could have made (docs/audit-bundle.md). Returns whether it is rejected.
bool Verifier::check_chosen(OriginLog& log, const OpEntry& e, LogWalk& walk) {
  const Op& op = e.op;
  const std::uint64_t s = op.seq;
  const std::uint64_t first = log.entry.first_seq;
  const OpEntry* prev =
      walk.prev != nullptr && walk.prev->status == OpStatus::kOk ? walk.prev : nullptr;
  // The head this op continues: the op before it; at a range bundle's start, the manifest's
  // prefix. After a gap, or after an op that is not authenticated, the link cannot be judged
  // (the finding there explains it): the head is taken as the op names it.
  const bool from_prefix = walk.prev == nullptr && s == first && first > 1;
  sync::LogHead head{s - 1, op.prev};
  if (prev != nullptr) head.hash = prev->hash;
  if (from_prefix) head.hash = log.entry.prefix_prev;
  bool reject = false;
  switch (judge_entry(log, head, e).verdict) {
    case sync::LogVerdict::kApply:
      break;
    case sync::LogVerdict::kRevoked:
      add_op(log, "revoked_op", s, &op.member,
             "signed after the origin's revocation cut-off (seq " + std::to_string(*log.cutoff) +
                 "): invalid everywhere");
      reject = true;
      break;
    case sync::LogVerdict::kFork:
    case sync::LogVerdict::kMalformed:
      add_op(log, "prev_mismatch", s, &op.member,
             from_prefix ? "prev does not match the hash of op " + std::to_string(s - 1) +
                               " the manifest's prefix names"
                         : "prev does not match the hash of op " + std::to_string(s - 1) +
                               ": the chain is broken here");
      reject = true;
      break;
    case sync::LogVerdict::kDuplicate:  // none of these: the op is the head's next seq, and
    case sync::LogVerdict::kGap:        // stage 3 verified its signature under a known key
    case sync::LogVerdict::kUnknownOrigin:
    case sync::LogVerdict::kBadSignature:
    case sync::LogVerdict::kEquivocation:
      reject = true;
      break;
  }
  if (prev != nullptr && op.hlc <= prev->op.hlc) {
    add_op(log, "hlc_backwards", s, &op.member,
           "HLC " + op.hlc.to_string() + " is not after op " + std::to_string(s - 1) + "'s " +
               prev->op.hlc.to_string());
    reject = true;
  }
  if (!op.request_id.empty()) {
    auto [it, fresh] = walk.request_ids.emplace(op.request_id, s);
    if (!fresh) {
      add_op(log, "duplicate_request_id", s, &op.member,
             "request_id '" + op.request_id + "' was already applied by op " +
                 std::to_string(it->second) + " of this origin");
      reject = true;
    }
  }
  if (op.kind == OpKind::kReverse) check_reversal(log, e, walk.reversed, reject);
  return reject;
}

// Equivocation evidence HQ kept: each op judged by the log rule against the log the bundle holds
// of its origin. The log's own op is no conflict; an op its origin did not sign is a finding of
// its own; any other op the origin signed for a seq is equivocation.
void Verifier::check_equivocation_evidence() {
  const std::string file = bundle::kEquivocationsFile;
  auto data = read_whole_file(internal::bundle_path(dir_, file), bundle::kBinaryFileBytesMax);
  if (!data.is_ok()) return;  // optional file; a listed one missing is a file finding already
  std::size_t offset = 0;
  std::uint64_t n = 0;
  while (offset < data->size()) {
    auto frame = sync::read_frame(*data, offset, limits::kOpSignedBytesMax);
    if (!frame.is_ok()) {
      add("malformed_file", "", 0, "", file, frame.status().message());
      break;
    }
    ++n;
    auto op = sync::decode_op(frame->body);
    if (!op.is_ok()) {
      add("malformed_op", "", 0, "", file,
          "evidence #" + std::to_string(n) + ": " + op.status().message());
      continue;
    }
    check_evidence(*op, sync::op_hash(frame->body, frame->sig), frame->body, frame->sig);
  }
  report_.counts["equivocation_evidence"] = n;
}

void Verifier::check_evidence(const Op& op, const Hash32& hash, sync::ByteView body,
                              const crypto::Signature& sig) {
  const std::string file = bundle::kEquivocationsFile;
  sync::OriginTrust trust;
  if (auto key = keys_.find(op.origin); key != keys_.end()) trust.key = key->second;
  const sync::SignatureCheck check = [&](const crypto::PublicKey& key) {
    return crypto::verify(key, body, sig) ? Status::ok() : Status::corruption("bad signature");
  };
  // The log as the bundle holds it: its chosen ops, contiguous from the first seq.
  const OriginLog* log = nullptr;
  if (auto it = by_origin_.find(op.origin); it != by_origin_.end()) log = it->second;
  const auto held_op = [&](std::uint64_t seq) -> const OpEntry* {
    if (log == nullptr || seq < log->entry.first_seq) return nullptr;
    const std::uint64_t idx = seq - log->entry.first_seq;
    return idx < log->chosen.size() ? log->chosen[idx] : nullptr;
  };
  sync::LogHead head;
  if (log != nullptr) {
    head.seq = log->entry.first_seq - 1 + log->chosen.size();
    head.hash = log->chosen.empty() ? log->entry.prefix_prev : log->chosen.back()->hash;
  }
  const sync::HeldHash held = [&](std::uint64_t seq) -> std::optional<Hash32> {
    const OpEntry* e = held_op(seq);
    return e ? std::optional<Hash32>(e->hash) : std::nullopt;
  };
  const sync::LogRuling ruling = sync::judge_op(head, trust, op, hash, held, check);
  bool signed_by_origin = true;
  switch (ruling.verdict) {
    case sync::LogVerdict::kDuplicate:
      return;                     // the log's own op: no conflict
    case sync::LogVerdict::kGap:  // beyond the log: the rule did not check the signature
      signed_by_origin = trust.key && check(*trust.key).is_ok();
      break;
    case sync::LogVerdict::kUnknownOrigin:
    case sync::LogVerdict::kBadSignature:
    case sync::LogVerdict::kMalformed:
      signed_by_origin = false;
      break;
    case sync::LogVerdict::kApply:
    case sync::LogVerdict::kRevoked:
    case sync::LogVerdict::kFork:
    case sync::LogVerdict::kEquivocation:
      break;
  }
  if (!signed_by_origin) {
    add("bad_signature", sync::id_hex(op.origin), op.seq, sync::id_hex(op.member), file,
        "equivocation evidence that its origin did not sign");
    return;
  }
  const OpEntry* held_entry = held_op(op.seq);
  add("equivocation", sync::id_hex(op.origin), op.seq, sync::id_hex(op.member), file,
      held_entry
          ? "HQ holds a second op signed by the origin for this seq (hash " + crypto::to_hex(hash) +
                "; the log's op is " + crypto::to_hex(held_entry->hash) + ")"
          : "HQ holds an op signed by the origin for this seq that is not in the log");
}

}  // namespace outpost::audit::internal
