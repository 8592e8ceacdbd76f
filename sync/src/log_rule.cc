// The log rule (rule_book.h): the one place that decides whether a signed op continues its
// origin's log. The ledger's ingest and `log verify`, the audit verifier and the simulator call
// judge_op(); none of them compares seqs, prevs, keys or cut-offs on its own.
#include "outpost/sync/rule_book.h"

namespace outpost::sync {

const char* log_verdict_name(LogVerdict v) {
  switch (v) {
    case LogVerdict::kApply:
      return "apply";
    case LogVerdict::kDuplicate:
      return "duplicate";
    case LogVerdict::kGap:
      return "gap";
    case LogVerdict::kUnknownOrigin:
      return "unknown_origin";
    case LogVerdict::kBadSignature:
      return "bad_signature";
    case LogVerdict::kRevoked:
      return "revoked";
    case LogVerdict::kEquivocation:
      return "equivocation";
    case LogVerdict::kFork:
      return "fork";
    case LogVerdict::kMalformed:
      return "malformed";
  }
  return "unknown";
}

SeqPlace seq_place(std::uint64_t head_seq, std::uint64_t seq) {
  if (seq <= head_seq) return SeqPlace::kHeld;
  return seq == head_seq + 1 ? SeqPlace::kNext : SeqPlace::kBeyond;
}

namespace {

LogRuling ruling(LogVerdict verdict, bool at_held_seq = false) {
  LogRuling r;
  r.verdict = verdict;
  r.at_held_seq = at_held_seq;
  return r;
}

// Step 4 of the rule: kApply when the op verifies under the origin's key, else why not.
LogRuling authenticate(const OriginTrust& trust, const SignatureCheck& check) {
  LogRuling r;
  if (!trust.key) {
    r.verdict = LogVerdict::kUnknownOrigin;
    return r;
  }
  Status st = check(*trust.key);
  if (!st.is_ok()) {
    r.verdict = LogVerdict::kBadSignature;
    r.signature = std::move(st);
  }
  return r;
}

}  // namespace

LogRuling judge_op(const LogHead& head, const OriginTrust& trust, const Op& op, const Hash32& hash,
                   const HeldHash& held, const SignatureCheck& check) {
  if (op.seq == 0 || (op.seq == 1 && op.prev != Hash32{})) return ruling(LogVerdict::kMalformed);
  switch (seq_place(head.seq, op.seq)) {
    case SeqPlace::kHeld: {
      const std::optional<Hash32> mine = held ? held(op.seq) : std::nullopt;
      if (mine && *mine == hash) return ruling(LogVerdict::kDuplicate, true);
      // A second, different op for a held seq: evidence only once it is known that the origin
      // really signed it (anyone can send garbage).
      LogRuling r = authenticate(trust, check);
      if (r.verdict == LogVerdict::kApply) r.verdict = LogVerdict::kEquivocation;
      r.at_held_seq = true;
      return r;
    }
    case SeqPlace::kBeyond:
      return ruling(LogVerdict::kGap);
    case SeqPlace::kNext:
      break;
  }
  LogRuling r = authenticate(trust, check);
  if (r.verdict != LogVerdict::kApply) return r;
  if (trust.cutoff && op.seq > *trust.cutoff) return ruling(LogVerdict::kRevoked);
  // Validly signed by the origin on top of another op than the one held at seq - 1: the origin
  // signed two histories.
  if (op.prev != head.hash) return ruling(LogVerdict::kFork);
  return r;
}

LogRuling judge_op(const LogHead& head, const OriginTrust& trust, const SignedOp& op,
                   const HeldHash& held) {
  return judge_op(head, trust, op.op, op.hash, held,
                  [&op](const crypto::PublicKey& key) { return verify_op(op, key); });
}

}  // namespace outpost::sync
