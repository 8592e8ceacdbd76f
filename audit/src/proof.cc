// `prove` and `verify-proof`: RFC 9162 inclusion proofs of single ops, bundled with the
// checkpoint and roster that make them checkable with the root key alone.
#include "outpost/audit/proof.h"

#include <algorithm>

#include "bundle_io.h"
#include "outpost/base/limits.h"
#include "outpost/sync/audit_bundle.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/roster.h"

namespace outpost::audit {

namespace bundle = sync::bundle;
using internal::hex_array;
using internal::json_string;
using sync::Hash32;

namespace {

constexpr int kProofVersion = 1;
// Audit paths of a tree of at most 2^64 leaves have at most 64 hashes.
constexpr std::size_t kAuditPathMax = 64;

struct RawFrame {
  std::vector<std::uint8_t> body;
  crypto::Signature sig{};
};

// Every frame of a bundle file; kCorruption when one is cut short.
Result<std::vector<RawFrame>> read_frames(const std::string& dir, const std::string& rel,
                                          std::size_t body_max) {
  OUTPOST_ASSIGN_OR_RETURN(auto data, read_whole_file(internal::bundle_path(dir, rel),
                                                      bundle::kBinaryFileBytesMax));
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
  if (entry->prefix_size != 0) {
    return Status::unsupported("inclusion proofs need a complete bundle (this one covers a date "
                               "range); export without --from/--to");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto cps, read_frames(dir, bundle::kCheckpointsFile,
                                                 4 * sync::kCheckpointBytes));
  std::optional<std::pair<sync::Checkpoint, const RawFrame*>> newest;
  for (const auto& f : cps) {
    auto cp = sync::decode_checkpoint(f.body);
    if (!cp.is_ok() || cp->origin != origin) continue;
    if (!newest || cp->tree_size > newest->first.tree_size) newest.emplace(*cp, &f);
  }
  if (!newest || newest->first.tree_size < seq) {
    return Status::not_found(
        "no checkpoint of origin " + sync::id_hex(origin) + " covers seq " + std::to_string(seq) +
        (newest ? " (the newest is at seq " + std::to_string(newest->first.tree_size) + ")" : "") +
        "; HQ signs new ones with `outpost hq checkpoint`");
  }
  const std::uint64_t tree_size = newest->first.tree_size;
  OUTPOST_ASSIGN_OR_RETURN(auto ops, read_frames(dir, entry->file, limits::kOpSignedBytesMax));
  // The checkpoint is not checked yet: its tree size bounds nothing until the ops are there.
  if (tree_size > ops.size()) {
    return Status::corruption("the bundle lacks ops of " + sync::id_hex(origin) + " up to seq " +
                              std::to_string(tree_size) + " (run outpost-audit verify)");
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
    return Status::corruption("the bundle lacks ops of " + sync::id_hex(origin) + " up to seq " +
                              std::to_string(tree_size) + " (run outpost-audit verify)");
  }
  sync::MerkleTree tree(leaves);
  if (tree.root(tree_size) != newest->first.root) {
    return Status::corruption("the bundle's ops do not hash to HQ's checkpoint at seq " +
                              std::to_string(tree_size) + " (run outpost-audit verify)");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto rosters, read_frames(dir, bundle::kRostersFile,
                                                     limits::kRosterBytesMax));
  if (rosters.empty()) return Status::not_found("the bundle holds no roster");
  const RawFrame& roster = rosters.back();
  Json path = Json::array();
  for (const Hash32& h : tree.inclusion_proof(seq - 1, tree_size)) {
    path.push_back(crypto::to_hex(h));
  }
  const Hash32 leaf = leaves[seq - 1];
  return Json{{"format", bundle::kProofFormat},
              {"version", kProofVersion},
              {"origin", sync::id_hex(origin)},
              {"seq", seq},
              {"leaf_index", seq - 1},
              {"tree_size", tree_size},
              {"op",
               {{"signed_bytes", crypto::to_hex(target->body)},
                {"sig", crypto::to_hex(target->sig)},
                {"hash", crypto::to_hex(sync::op_hash(target->body, target->sig))},
                {"leaf_hash", crypto::to_hex(leaf)}}},
              {"checkpoint",
               {{"body", crypto::to_hex(newest->second->body)},
                {"sig", crypto::to_hex(newest->second->sig)},
                {"root", crypto::to_hex(newest->first.root)}}},
              {"roster", {{"body", crypto::to_hex(roster.body)}, {"sig", crypto::to_hex(roster.sig)}}},
              {"audit_path", path}};
}

Result<ProofResult> verify_inclusion_proof(const Json& proof, const crypto::PublicKey& root) {
  const std::string what = "proof";
  // Members are read as Json and compared, never converted: a member of another type is a
  // mismatch, not an exception.
  if (!proof.is_object() || proof.value("format", Json()) != bundle::kProofFormat) {
    return Status::invalid("not an " + std::string(bundle::kProofFormat) + " document");
  }
  if (proof.value("version", Json()) != kProofVersion) {
    return Status::unsupported("proof version " + proof.value("version", Json()).dump() +
                               " is not supported");
  }
  for (const char* key : {"op", "checkpoint", "roster"}) {
    if (!proof.contains(key) || !proof[key].is_object()) {
      return Status::invalid(what + ": '" + key + "' must be an object");
    }
  }
  if (!proof.contains("audit_path") || !proof["audit_path"].is_array() ||
      proof["audit_path"].size() > kAuditPathMax || !proof.contains("seq") ||
      !proof["seq"].is_number_unsigned()) {
    return Status::invalid(what + ": needs 'seq' and an 'audit_path' of at most 64 hashes");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto roster_body, hex_bytes(proof["roster"], "body", "roster"));
  OUTPOST_ASSIGN_OR_RETURN(auto roster_sig, hex_bytes(proof["roster"], "sig", "roster"));
  OUTPOST_ASSIGN_OR_RETURN(auto cp_body, hex_bytes(proof["checkpoint"], "body", "checkpoint"));
  OUTPOST_ASSIGN_OR_RETURN(auto cp_sig, hex_bytes(proof["checkpoint"], "sig", "checkpoint"));
  OUTPOST_ASSIGN_OR_RETURN(auto op_bytes, hex_bytes(proof["op"], "signed_bytes", "op"));
  OUTPOST_ASSIGN_OR_RETURN(auto op_sig_bytes, hex_bytes(proof["op"], "sig", "op"));
  std::vector<Hash32> path;
  for (const auto& h : proof["audit_path"]) {
    if (!h.is_string()) return Status::invalid(what + ": audit path entries must be hex");
    OUTPOST_ASSIGN_OR_RETURN(Hash32 hash, hex_array<32>(h.get<std::string>(), "audit path"));
    path.push_back(hash);
  }
  const std::uint64_t seq = proof["seq"].get<std::uint64_t>();

  ProofResult r;
  auto fail = [&](const std::string& why) {
    r.valid = false;
    r.failure = why;
    return r;
  };
  auto decoded_roster = sync::decode_roster(roster_body);
  if (!decoded_roster.is_ok()) return fail("roster: " + decoded_roster.status().message());
  auto roster = sync::verify_roster(roster_body, roster_sig, root, decoded_roster->network_id);
  if (!roster.is_ok()) return fail("roster: " + roster.status().message());
  r.checks.push_back("roster v" + std::to_string(roster->roster.version) +
                     " is signed by the root key");
  auto cp = sync::verify_checkpoint(cp_body, cp_sig, root);
  if (!cp.is_ok()) return fail("checkpoint: " + cp.status().message());
  if (cp->cp.network_id != roster->roster.network_id) {
    return fail("checkpoint: it belongs to another network than the roster");
  }
  r.checks.push_back("checkpoint of " + sync::id_hex(cp->cp.origin) + " at seq " +
                     std::to_string(cp->cp.tree_size) + " is signed by the root key");
  auto op = sync::decode_op(op_bytes);
  if (!op.is_ok()) return fail("op: " + op.status().message());
  if (op->origin != cp->cp.origin || op->seq != seq ||
      proof.value("origin", Json()) != sync::id_hex(op->origin)) {
    return fail("op: its origin and seq are not the ones the proof and checkpoint name");
  }
  if (op_sig_bytes.size() != 64) return fail("op: the signature must be 64 bytes");
  crypto::Signature op_sig{};
  std::copy(op_sig_bytes.begin(), op_sig_bytes.end(), op_sig.begin());
  auto key = roster->roster.signing_key(op->origin);
  if (!key) return fail("op: its origin is not in the roster");
  if (!crypto::verify(*key, op_bytes, op_sig)) {
    return fail("op: the signature does not verify under the origin's certificate key");
  }
  if (!roster->roster.op_allowed(op->origin, op->seq)) {
    return fail("op: it is past its origin's revocation cut-off");
  }
  r.checks.push_back("op " + sync::op_ref_string(op->origin, op->seq) + " (" +
                     sync::kind_name(op->kind) + ") is signed by its origin");
  if (seq > cp->cp.tree_size) return fail("the checkpoint does not cover this seq");
  const Hash32 leaf = sync::merkle_op_leaf_hash(op_bytes, op_sig);
  if (!sync::merkle_verify_inclusion(seq - 1, cp->cp.tree_size, leaf, path, cp->cp.root)) {
    return fail("the audit path does not lead from the op to the checkpoint's root");
  }
  r.checks.push_back("the audit path of " + std::to_string(path.size()) +
                     " hashes leads from the op's leaf to the checkpoint's root");
  r.valid = true;
  return r;
}

}  // namespace outpost::audit
