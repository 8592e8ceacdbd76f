// `prove` and `verify-proof`: RFC 9162 inclusion proofs of single ops, bundled with the HQ tree
// head set and the roster that make them checkable with the root key alone.
#include "outpost/audit/proof.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>

#include "bundle_io.h"
#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rule_book.h"

namespace outpost::audit {

using internal::hex_array;
using internal::json_string;
using sync::Hash32;

namespace {

// Version 1 proofs carried a per-origin checkpoint, which names no roster: a proof could then be
// checked against a roster from before a revocation. Version 2 carries a tree head set instead.
constexpr int kProofVersion = 2;
// Audit paths of a tree of at most 2^64 leaves have at most 64 hashes.
constexpr std::size_t kAuditPathMax = 64;

struct RawFrame {
  std::vector<std::uint8_t> body;
  crypto::Signature sig{};
};

// Every frame of a bundle file; kCorruption when one is cut short.
Result<std::vector<RawFrame>> read_frames(const std::string& dir, const std::string& rel,
                                          std::size_t body_max) {
  OUTPOST_ASSIGN_OR_RETURN(
      auto data, read_whole_file(internal::bundle_path(dir, rel), bundle::kBinaryFileBytesMax));
  std::vector<RawFrame> out;
  std::size_t offset = 0;
  while (offset < data.size()) {
    auto frame = sync::read_frame(data, offset, body_max);
    if (!frame.is_ok()) return frame.status().with_context(rel);
    out.push_back(RawFrame{{frame->body.begin(), frame->body.end()}, frame->sig});
  }
  return out;
}

Result<std::vector<std::uint8_t>> hex_bytes(const Json& j, const char* key,
                                            const std::string& what) {
  OUTPOST_ASSIGN_OR_RETURN(std::string hex, json_string(j, key, what));
  auto b = crypto::from_hex(hex);
  if (!b.is_ok()) return Status::invalid(what + ": '" + key + "' is not hex");
  return std::move(b).value();
}

// The newest (highest version) record of a tree head set file that decodes, or kNotFound.
Result<std::pair<sync::TreeHeadSet, RawFrame>> newest_tree_head_set(const std::string& dir) {
  auto frames = read_frames(dir, bundle::kTreeHeadsFile, sync::kTreeHeadSetBytesMax);
  if (!frames.is_ok() && frames.status().code() != Code::kNotFound) return frames.status();
  std::optional<std::pair<sync::TreeHeadSet, RawFrame>> newest;
  for (auto& f : frames.is_ok() ? *frames : std::vector<RawFrame>()) {
    auto set = sync::decode_tree_head_set(f.body);
    if (set.is_ok() && (!newest || set->version > newest->first.version)) newest.emplace(*set, f);
  }
  if (!newest) {
    return Status::not_found(
        "the bundle holds no HQ tree head set (HQ signs one with `outpost hq "
        "checkpoint`)");
  }
  return std::move(*newest);
}

// The newest roster record of the bundle, which must be at least version `at_least`.
Result<std::pair<std::uint64_t, RawFrame>> newest_roster(const std::string& dir,
                                                         std::uint64_t at_least) {
  OUTPOST_ASSIGN_OR_RETURN(auto frames,
                           read_frames(dir, bundle::kRostersFile, limits::kRosterBytesMax));
  std::optional<std::pair<std::uint64_t, RawFrame>> newest;
  for (auto& f : frames) {
    auto r = sync::decode_roster(f.body);
    if (r.is_ok() && (!newest || r->version > newest->first)) newest.emplace(r->version, f);
  }
  if (!newest || newest->first < at_least) {
    return Status::not_found("the bundle lacks roster v" + std::to_string(at_least) +
                             ", which its newest tree head set names");
  }
  return std::move(*newest);
}

// The leaf hashes of ops 1 .. tree_size of one origin's file and the frame of op `seq`;
// kCorruption when one is missing.
Result<std::pair<std::vector<Hash32>, RawFrame>> log_leaves(const std::string& dir,
                                                            const internal::OriginEntry& entry,
                                                            std::uint64_t tree_size,
                                                            std::uint64_t seq) {
  OUTPOST_ASSIGN_OR_RETURN(auto ops, read_frames(dir, entry.file, limits::kOpSignedBytesMax));
  // The tree head is not checked yet: its tree size bounds nothing until the ops are there, so
  // it must not size an allocation.
  if (tree_size > ops.size()) {
    return Status::corruption("the bundle lacks ops of " + sync::id_hex(entry.origin) +
                              " up to seq " + std::to_string(tree_size) +
                              " (run outpost-audit verify)");
  }
  std::vector<Hash32> leaves(tree_size);
  std::vector<bool> have(tree_size, false);
  const RawFrame* target = nullptr;
  for (const auto& f : ops) {
    auto op = sync::decode_op(f.body);
    if (!op.is_ok() || op->seq == 0 || op->seq > tree_size || have[op->seq - 1]) continue;
    leaves[op->seq - 1] = sync::merkle_op_leaf_hash(f.body, f.sig);
    have[op->seq - 1] = true;
    if (op->seq == seq) target = &f;
  }
  if (std::find(have.begin(), have.end(), false) != have.end() || target == nullptr) {
    return Status::corruption("the bundle lacks ops of " + sync::id_hex(entry.origin) +
                              " up to seq " + std::to_string(tree_size) +
                              " (run outpost-audit verify)");
  }
  return std::make_pair(std::move(leaves), *target);
}

Json signed_json(const RawFrame& f) {
  return Json{{"body", crypto::to_hex(f.body)}, {"sig", crypto::to_hex(f.sig)}};
}

}  // namespace

Result<Json> prove_inclusion(const std::string& dir, const sync::NodeId& origin,
                             std::uint64_t seq) {
  OUTPOST_ASSIGN_OR_RETURN(Json manifest, internal::read_manifest(dir));
  OUTPOST_ASSIGN_OR_RETURN(auto origins, internal::bundle_origins(dir, manifest));
  auto entry = std::find_if(origins.begin(), origins.end(),
                            [&](const auto& e) { return e.origin == origin; });
  if (entry == origins.end()) {
    return Status::not_found("the bundle has no log of origin " + sync::id_hex(origin));
  }
  if (!entry->error.empty()) return Status::invalid("manifest: " + entry->error);
  if (entry->prefix_size != 0) {
    return Status::unsupported(
        "inclusion proofs need a complete bundle (this one covers a date "
        "range); export without --from/--to");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto set, newest_tree_head_set(dir));
  const sync::TreeHead* head = set.first.find(origin);
  const std::uint64_t tree_size = head ? head->tree_size : 0;
  if (tree_size < seq) {
    return Status::not_found("tree head set v" + std::to_string(set.first.version) +
                             ", the newest in the bundle, covers " + std::to_string(tree_size) +
                             " ops of origin " + sync::id_hex(origin) + ", not seq " +
                             std::to_string(seq) +
                             "; HQ signs a new one with `outpost hq "
                             "checkpoint`");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto log, log_leaves(dir, *entry, tree_size, seq));
  sync::MerkleTree tree(log.first);
  if (tree.root(tree_size) != head->root) {
    return Status::corruption("the bundle's ops do not hash to tree head set v" +
                              std::to_string(set.first.version) + "'s head at seq " +
                              std::to_string(tree_size) + " (run outpost-audit verify)");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto roster, newest_roster(dir, set.first.roster_version));
  Json path = Json::array();
  for (const Hash32& h : tree.inclusion_proof(seq - 1, tree_size)) {
    path.push_back(crypto::to_hex(h));
  }
  const RawFrame& op = log.second;
  Json tree_heads = signed_json(set.second);
  tree_heads["version"] = set.first.version;
  tree_heads["roster_version"] = set.first.roster_version;
  tree_heads["root"] = crypto::to_hex(head->root);
  Json roster_json = signed_json(roster.second);
  roster_json["version"] = roster.first;
  return Json{{"format", bundle::kProofFormat},
              {"version", kProofVersion},
              {"origin", sync::id_hex(origin)},
              {"seq", seq},
              {"leaf_index", seq - 1},
              {"tree_size", tree_size},
              {"op",
               {{"signed_bytes", crypto::to_hex(op.body)},
                {"sig", crypto::to_hex(op.sig)},
                {"hash", crypto::to_hex(sync::op_hash(op.body, op.sig))},
                {"leaf_hash", crypto::to_hex(log.first[seq - 1])}}},
              {"tree_heads", tree_heads},
              {"roster", roster_json},
              {"audit_path", path}};
}

namespace {

// The parts of a proof document, parsed; kInvalidArgument / kUnsupported as for
// verify_inclusion_proof.
struct ProofParts {
  std::vector<std::uint8_t> roster_body, roster_sig, set_body, set_sig, op_bytes, op_sig;
  std::vector<Hash32> path;
  std::uint64_t seq = 0;
  std::string origin;
};

Result<ProofParts> parse_proof(const Json& proof) {
  const std::string what = "proof";
  // Members are read as Json and compared, never converted: a member of another type is a
  // mismatch, not an exception.
  if (!proof.is_object() || proof.value("format", Json()) != bundle::kProofFormat) {
    return Status::invalid("not an " + std::string(bundle::kProofFormat) + " document");
  }
  if (proof.value("version", Json()) == 1) {
    return Status::unsupported(
        "proof version 1 carries a checkpoint, which names no roster, so "
        "the revocations it is checked against cannot be pinned; make a "
        "new proof with `outpost-audit prove`");
  }
  if (proof.value("version", Json()) != kProofVersion) {
    return Status::unsupported("proof version " + proof.value("version", Json()).dump() +
                               " is not supported");
  }
  for (const char* key : {"op", "tree_heads", "roster"}) {
    if (!proof.contains(key) || !proof[key].is_object()) {
      return Status::invalid(what + ": '" + key + "' must be an object");
    }
  }
  if (!proof.contains("audit_path") || !proof["audit_path"].is_array() ||
      proof["audit_path"].size() > kAuditPathMax || !proof.contains("seq") ||
      !proof["seq"].is_number_unsigned() || proof["seq"].get<std::uint64_t>() == 0) {
    return Status::invalid(what + ": needs 'seq' (>= 1) and an 'audit_path' of at most 64 hashes");
  }
  ProofParts p;
  OUTPOST_ASSIGN_OR_RETURN(p.origin, json_string(proof, "origin", what));
  OUTPOST_ASSIGN_OR_RETURN(p.roster_body, hex_bytes(proof["roster"], "body", "roster"));
  OUTPOST_ASSIGN_OR_RETURN(p.roster_sig, hex_bytes(proof["roster"], "sig", "roster"));
  OUTPOST_ASSIGN_OR_RETURN(p.set_body, hex_bytes(proof["tree_heads"], "body", "tree_heads"));
  OUTPOST_ASSIGN_OR_RETURN(p.set_sig, hex_bytes(proof["tree_heads"], "sig", "tree_heads"));
  OUTPOST_ASSIGN_OR_RETURN(p.op_bytes, hex_bytes(proof["op"], "signed_bytes", "op"));
  OUTPOST_ASSIGN_OR_RETURN(p.op_sig, hex_bytes(proof["op"], "sig", "op"));
  for (const auto& h : proof["audit_path"]) {
    if (!h.is_string()) return Status::invalid(what + ": audit path entries must be hex");
    OUTPOST_ASSIGN_OR_RETURN(Hash32 hash, hex_array<32>(h.get<std::string>(), "audit path"));
    p.path.push_back(hash);
  }
  p.seq = proof["seq"].get<std::uint64_t>();
  return p;
}

std::string utc_day_time(std::uint64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace

namespace {

// Checks 1-4 of verify-proof: the roster and the tree head set are root-signed for one network,
// the roster is not older than the set's, the set not older than `min_tree_head_version`. Fills
// `r` (checks, versions) and returns the failure, or "" when they pass.
std::string check_anchors(const ProofParts& p, const crypto::PublicKey& root,
                          std::uint64_t min_tree_head_version, std::optional<sync::Roster>& rs,
                          std::optional<sync::TreeHeadSet>& ths, ProofResult& r) {
  auto decoded_roster = sync::decode_roster(p.roster_body);
  if (!decoded_roster.is_ok()) return "roster: " + decoded_roster.status().message();
  auto roster = sync::verify_roster(p.roster_body, p.roster_sig, root, decoded_roster->network_id);
  if (!roster.is_ok()) return "roster: " + roster.status().message();
  rs = std::move(roster->roster);
  r.roster_version = rs->version;
  r.checks.push_back("roster v" + std::to_string(rs->version) + " is signed by the root key");
  auto set = sync::verify_tree_head_set(p.set_body, p.set_sig, root);
  if (!set.is_ok()) return "tree head set: " + set.status().message();
  ths = std::move(set->set);
  r.tree_head_version = ths->version;
  r.tree_head_issued_ms = ths->issued.wall_ms;
  r.tree_head_roster_version = ths->roster_version;
  if (ths->network_id != rs->network_id) {
    return "tree head set: it belongs to another network than the roster";
  }
  r.checks.push_back("tree head set v" + std::to_string(ths->version) + " (signed " +
                     utc_day_time(ths->issued.wall_ms) + ", under roster v" +
                     std::to_string(ths->roster_version) + ") is signed by the root key");
  // A newer roster only adds nodes and revocations; an older one may lack a revocation.
  if (rs->version < ths->roster_version) {
    return "roster: the proof carries roster v" + std::to_string(rs->version) +
           ", older than roster v" + std::to_string(ths->roster_version) +
           " under which HQ signed its tree head set; an older roster may lack revocations";
  }
  if (ths->version < min_tree_head_version) {
    return "tree head set: v" + std::to_string(ths->version) + " is older than v" +
           std::to_string(min_tree_head_version) + ", the newest you know HQ signed";
  }
  r.checks.push_back("roster v" + std::to_string(rs->version) + " is not older than roster v" +
                     std::to_string(ths->roster_version) + " the tree head set names");
  return "";
}

// Checks 5-6: the op is the proof's, signed by its origin and not revoked in `rs`, and the audit
// path leads to the origin's head in `ths`. Returns the failure, or "".
std::string check_op(const ProofParts& p, const sync::Roster& rs, const sync::TreeHeadSet& ths,
                     ProofResult& r) {
  auto op = sync::decode_op(p.op_bytes);
  if (!op.is_ok()) return "op: " + op.status().message();
  if (op->seq != p.seq || p.origin != sync::id_hex(op->origin)) {
    return "op: its origin and seq are not the ones the proof names";
  }
  if (p.op_sig.size() != 64) return "op: the signature must be 64 bytes";
  crypto::Signature op_sig{};
  std::copy(p.op_sig.begin(), p.op_sig.end(), op_sig.begin());
  // The log rule (sync::judge_op) on this one op. Its place in the log is proven by the audit path
  // below, not by a held chain, so the head is taken as the op names it: what is judged here is
  // the signature and the revocation cut-off.
  sync::OriginTrust trust;
  trust.key = rs.signing_key(op->origin);
  if (const sync::Revocation* rev = rs.revocation(op->origin)) trust.cutoff = rev->after_seq;
  const sync::SignatureCheck check = [&](const crypto::PublicKey& key) {
    return crypto::verify(key, p.op_bytes, op_sig) ? Status::ok()
                                                   : Status::corruption("bad signature");
  };
  const sync::LogHead as_named{op->seq - 1, op->prev};
  switch (sync::judge_op(as_named, trust, *op, sync::op_hash(p.op_bytes, op_sig), nullptr, check)
              .verdict) {
    case sync::LogVerdict::kApply:
      break;
    case sync::LogVerdict::kUnknownOrigin:
      return "op: its origin is not in the roster";
    case sync::LogVerdict::kBadSignature:
      return "op: the signature does not verify under the origin's certificate key";
    case sync::LogVerdict::kRevoked:
      return "op: it is past its origin's revocation cut-off in roster v" +
             std::to_string(rs.version);
    case sync::LogVerdict::kDuplicate:  // none of these: the head is the op's own predecessor,
    case sync::LogVerdict::kGap:        // and decode_op refused a malformed seq or genesis
    case sync::LogVerdict::kEquivocation:
    case sync::LogVerdict::kFork:
    case sync::LogVerdict::kMalformed:
      return "op: not a valid op of its origin's log";
  }
  r.checks.push_back("op " + sync::op_ref_string(op->origin, op->seq) + " (" +
                     sync::kind_name(op->kind) + ") is signed by its origin, not revoked");
  const sync::TreeHead* head = ths.find(op->origin);
  if (head == nullptr || head->tree_size < p.seq) {
    return "the tree head set does not cover this seq of the op's origin";
  }
  const Hash32 leaf = sync::merkle_op_leaf_hash(p.op_bytes, op_sig);
  if (!sync::merkle_verify_inclusion(p.seq - 1, head->tree_size, leaf, p.path, head->root)) {
    return "the audit path does not lead from the op to the tree head set's root";
  }
  r.checks.push_back("the audit path of " + std::to_string(p.path.size()) +
                     " hashes leads from the op's leaf to the head of its origin's " +
                     std::to_string(head->tree_size) + " ops in the tree head set");
  return "";
}

}  // namespace

Result<ProofResult> verify_inclusion_proof(const Json& proof, const crypto::PublicKey& root,
                                           std::uint64_t min_tree_head_version) {
  OUTPOST_ASSIGN_OR_RETURN(ProofParts p, parse_proof(proof));
  ProofResult r;
  std::optional<sync::Roster> rs;
  std::optional<sync::TreeHeadSet> ths;
  r.failure = check_anchors(p, root, min_tree_head_version, rs, ths, r);
  if (r.failure.empty()) r.failure = check_op(p, *rs, *ths, r);
  r.valid = r.failure.empty();
  return r;
}

}  // namespace outpost::audit
