// `outpost-audit consistency`: RFC 9162 §2.1.4 consistency proofs between two HQ-signed heads.
#include "outpost/audit/consistency.h"

#include <algorithm>
#include <array>
#include <set>

#include "bundle_io.h"
#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "outpost/sync/merkle.h"

namespace outpost::audit {

using sync::Hash32;
using sync::NodeId;

namespace {

constexpr const char* kConsistencyFormat = "outpost-consistency-proof";
constexpr int kConsistencyVersion = 1;
// A consistency proof of trees of at most 2^64 leaves has at most 2·64 hashes.
constexpr std::size_t kConsistencyPathMax = 128;
// One proof per origin at most.
constexpr std::size_t kProofsMax = limits::kOriginsMax;

bool has_magic(sync::ByteView body, const std::array<std::uint8_t, 4>& magic) {
  return body.size() >= magic.size() && std::equal(magic.begin(), magic.end(), body.begin());
}

// A record that fails to verify: kPermission when its signature does not verify (altered bytes),
// kInvalidArgument for anything else (it does not decode).
Status head_error(const Status& st, const std::string& what) {
  return Status(st.code() == Code::kPermission ? Code::kPermission : Code::kInvalidArgument,
                what + ": " + st.message());
}

// Reads every record of the file and keeps what each states: a checkpoint or a tree head set.
struct HeadRecords {
  std::vector<sync::SignedCheckpoint> checkpoints;
  std::vector<sync::SignedTreeHeadSet> sets;
};

Result<HeadRecords> read_head_records(const std::string& path, const crypto::PublicKey& root) {
  OUTPOST_ASSIGN_OR_RETURN(auto data, read_whole_file(path, bundle::kBinaryFileBytesMax));
  HeadRecords out;
  std::size_t offset = 0;
  for (std::size_t n = 1; offset < data.size(); ++n) {
    const std::string what = path + ": record #" + std::to_string(n);
    auto frame = sync::read_frame(data, offset, sync::kTreeHeadSetBytesMax);
    if (!frame.is_ok()) {
      return Status::invalid(what + ": " + frame.status().message() +
                             " (not a file of signed records)");
    }
    const bool cp = has_magic(frame->body, sync::kCheckpointMagic);
    if (!cp && !has_magic(frame->body, sync::kTreeHeadSetMagic)) {
      return Status::invalid(what + " is neither a checkpoint nor a tree head set");
    }
    const crypto::ByteView sig(frame->sig);
    if (cp) {
      auto c = sync::verify_checkpoint(frame->body, sig, root);
      if (!c.is_ok()) return head_error(c.status(), what);
      out.checkpoints.push_back(std::move(c).value());
    } else {
      auto s = sync::verify_tree_head_set(frame->body, sig, root);
      if (!s.is_ok()) return head_error(s.status(), what);
      out.sets.push_back(std::move(s).value());
    }
  }
  if (out.checkpoints.empty() && out.sets.empty()) {
    return Status::invalid(path + " holds no record");
  }
  if (!out.checkpoints.empty() && !out.sets.empty()) {
    return Status::invalid(path + " holds both checkpoints and tree head sets: give one kind");
  }
  return out;
}

Result<SignedHeads> newest_set(const std::string& path,
                               const std::vector<sync::SignedTreeHeadSet>& sets) {
  const sync::SignedTreeHeadSet* best = nullptr;
  for (const auto& s : sets) {
    if (s.set.network_id != sets.front().set.network_id) {
      return Status::invalid(path + " holds tree head sets of two networks");
    }
    if (best != nullptr && s.set.version == best->set.version && s.body != best->body) {
      return Status::invalid(path + " holds two different tree head sets with version " +
                             std::to_string(s.set.version) + " (run outpost-audit verify)");
    }
    if (best == nullptr || s.set.version > best->set.version) best = &s;
  }
  SignedHeads h;
  h.is_set = true;
  h.network_id = best->set.network_id;
  h.version = best->set.version;
  h.roster_version = best->set.roster_version;
  h.issued_ms = best->set.issued.wall_ms;
  h.heads = best->set.heads;
  return h;
}

Result<SignedHeads> largest_checkpoint(const std::string& path,
                                       const std::vector<sync::SignedCheckpoint>& cps,
                                       const std::optional<NodeId>& origin) {
  std::set<NodeId> origins;
  for (const auto& c : cps) origins.insert(c.cp.origin);
  if (!origin && origins.size() > 1) {
    return Status::invalid(path + " holds checkpoints of " + std::to_string(origins.size()) +
                           " origins: name one with --origin");
  }
  const NodeId want = origin ? *origin : *origins.begin();
  const sync::SignedCheckpoint* best = nullptr;
  for (const auto& c : cps) {
    if (c.cp.network_id != cps.front().cp.network_id) {
      return Status::invalid(path + " holds checkpoints of two networks");
    }
    if (c.cp.origin == want && (best == nullptr || c.cp.tree_size > best->cp.tree_size)) best = &c;
  }
  if (best == nullptr) {
    return Status::invalid(path + " holds no checkpoint of origin " + sync::id_hex(want));
  }
  SignedHeads h;
  h.network_id = best->cp.network_id;
  h.issued_ms = best->cp.issued.wall_ms;
  h.heads.push_back(
      sync::TreeHead{best->cp.origin, best->cp.tree_size, best->cp.root, best->cp.head_hash});
  return h;
}

const sync::TreeHead* find_head(const SignedHeads& h, const NodeId& origin) {
  for (const auto& t : h.heads) {
    if (t.origin == origin) return &t;
  }
  return nullptr;
}

// The leaf hashes of ops 1 .. n of `origin` in the bundle, or nullopt when it lacks one.
std::optional<std::vector<Hash32>> bundle_leaves(const std::string& dir,
                                                 const internal::OriginEntry& e, std::uint64_t n) {
  auto data = read_whole_file(internal::bundle_path(dir, e.file), bundle::kBinaryFileBytesMax);
  if (!data.is_ok()) return std::nullopt;
  std::vector<Hash32> leaves;
  std::size_t offset = 0;
  while (offset < data->size() && leaves.size() < n) {
    auto frame = sync::read_frame(*data, offset, limits::kOpSignedBytesMax);
    if (!frame.is_ok()) return std::nullopt;
    auto op = sync::decode_op(frame->body);
    if (!op.is_ok() || op->seq != leaves.size() + 1) return std::nullopt;
    leaves.push_back(sync::merkle_op_leaf_hash(frame->body, frame->sig));
  }
  if (leaves.size() != n) return std::nullopt;
  return leaves;
}

// Checks one origin: `now` extends `old`. Returns the failure, or "" and the check that passed.
std::string check_origin(const sync::TreeHead& o, const SignedHeads& now,
                         const std::vector<ConsistencyProof>& proofs, std::string& passed) {
  const std::string hex = sync::id_hex(o.origin);
  const sync::TreeHead* n = find_head(now, o.origin);
  if (n == nullptr) {
    return "NEW (" + now.describe() + ") names no head of origin " + hex +
           ", which OLD vouches for: the heads are of different logs, or NEW dropped it";
  }
  if (n->tree_size < o.tree_size) {
    return "origin " + hex + ": NEW's tree has " + std::to_string(n->tree_size) +
           " ops, fewer than OLD's " + std::to_string(o.tree_size) +
           ": a log never shrinks (or the files are in the wrong order: pass the older first)";
  }
  if (o.tree_size == 0) {
    passed = "origin " + hex + ": OLD's log is empty, which every log extends";
    return "";
  }
  if (n->tree_size == o.tree_size) {
    if (n->root != o.root || n->head_hash != o.head_hash) {
      return "origin " + hex + ": two different heads for " + std::to_string(o.tree_size) +
             " ops: the log was rewritten";
    }
    passed = "origin " + hex + ": the same head at " + std::to_string(o.tree_size) + " ops";
    return "";
  }
  auto p = std::find_if(proofs.begin(), proofs.end(), [&](const ConsistencyProof& c) {
    return c.origin == o.origin && c.old_size == o.tree_size && c.new_size == n->tree_size;
  });
  if (p == proofs.end()) {
    return "origin " + hex + ": no consistency proof from " + std::to_string(o.tree_size) + " to " +
           std::to_string(n->tree_size) +
           " ops (the proof file lacks it, or the "
           "bundle lacks the ops)";
  }
  if (!sync::merkle_verify_consistency(o.tree_size, n->tree_size, o.root, n->root, p->path)) {
    return "origin " + hex + ": the consistency proof from " + std::to_string(o.tree_size) +
           " to " + std::to_string(n->tree_size) +
           " ops does not verify: NEW's log does not "
           "extend OLD's (or the proof or the bundle's ops were altered)";
  }
  passed = "origin " + hex + ": " + std::to_string(n->tree_size) + " ops extend the " +
           std::to_string(o.tree_size) + " of OLD (proof of " + std::to_string(p->path.size()) +
           " hashes)";
  return "";
}

// The rules between the two heads as wholes: one network, sets in version order.
std::string check_order(const SignedHeads& old, const SignedHeads& now) {
  if (old.network_id != now.network_id) return "OLD and NEW belong to different networks";
  if (!old.is_set || !now.is_set) return "";
  if (old.version > now.version) {
    return "wrong order: OLD is " + old.describe() + ", newer than NEW, " + now.describe() +
           ": pass the older head first";
  }
  if (now.roster_version < old.roster_version) {
    return "NEW (" + now.describe() + ") names roster v" + std::to_string(now.roster_version) +
           ", older than OLD's v" + std::to_string(old.roster_version);
  }
  return "";
}

Json proof_json(const ConsistencyProof& p) {
  Json path = Json::array();
  for (const Hash32& h : p.path) path.push_back(crypto::to_hex(h));
  return Json{{"origin", sync::id_hex(p.origin)},
              {"old_size", p.old_size},
              {"new_size", p.new_size},
              {"path", path}};
}

Json heads_json(const SignedHeads& h) {
  return Json{{"kind", h.is_set ? "tree_head_set" : "checkpoint"},
              {"version", h.is_set ? Json(h.version) : Json()},
              {"roster_version", h.is_set ? Json(h.roster_version) : Json()},
              {"issued_ms", h.issued_ms},
              {"origins", h.heads.size()}};
}

}  // namespace

std::string SignedHeads::describe() const {
  if (is_set) return "tree head set v" + std::to_string(version);
  const sync::TreeHead& h = heads.front();
  return "checkpoint of " + sync::id_hex(h.origin) + " at " + std::to_string(h.tree_size);
}

Result<SignedHeads> read_signed_heads(const std::string& path, const crypto::PublicKey& root,
                                      const std::optional<NodeId>& origin) {
  OUTPOST_ASSIGN_OR_RETURN(HeadRecords records, read_head_records(path, root));
  if (!records.sets.empty()) return newest_set(path, records.sets);
  return largest_checkpoint(path, records.checkpoints, origin);
}

Result<std::vector<ConsistencyProof>> parse_consistency_proofs(const Json& doc) {
  if (!doc.is_object() || doc.value("format", "") != kConsistencyFormat) {
    return Status::invalid("not an " + std::string(kConsistencyFormat) + " document");
  }
  if (doc.value("version", 0) != kConsistencyVersion) {
    return Status::unsupported("consistency proof version " + doc.value("version", Json()).dump() +
                               " is not supported");
  }
  if (!doc.contains("proofs") || !doc["proofs"].is_array() || doc["proofs"].size() > kProofsMax) {
    return Status::invalid("a consistency proof needs a 'proofs' array of at most " +
                           std::to_string(kProofsMax) + " entries");
  }
  std::vector<ConsistencyProof> out;
  for (const auto& j : doc["proofs"]) {
    const std::string what = "consistency proof entry";
    ConsistencyProof p;
    OUTPOST_ASSIGN_OR_RETURN(std::string hex, internal::json_string(j, "origin", what));
    OUTPOST_ASSIGN_OR_RETURN(p.origin, internal::hex_array<16>(hex, what + " origin"));
    const std::array<std::pair<const char*, std::uint64_t*>, 2> sizes = {
        {{"old_size", &p.old_size}, {"new_size", &p.new_size}}};
    for (const auto& [key, field] : sizes) {
      if (!j.contains(key) || !j[key].is_number_unsigned()) {
        return Status::invalid(what + ": '" + key + "' must be an unsigned integer");
      }
      *field = j[key].get<std::uint64_t>();
    }
    if (!j.contains("path") || !j["path"].is_array() || j["path"].size() > kConsistencyPathMax) {
      return Status::invalid(what + ": 'path' must be an array of at most " +
                             std::to_string(kConsistencyPathMax) + " hashes");
    }
    for (const auto& h : j["path"]) {
      if (!h.is_string()) return Status::invalid(what + ": path entries must be hex strings");
      OUTPOST_ASSIGN_OR_RETURN(Hash32 hash, internal::hex_array<32>(h.get<std::string>(), what));
      p.path.push_back(hash);
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<ConsistencyProof>> consistency_proofs_from_bundle(const std::string& dir,
                                                                     const SignedHeads& old,
                                                                     const SignedHeads& now) {
  OUTPOST_ASSIGN_OR_RETURN(Json manifest, internal::read_manifest(dir));
  OUTPOST_ASSIGN_OR_RETURN(auto origins, internal::bundle_origins(dir, manifest));
  std::vector<ConsistencyProof> out;
  for (const sync::TreeHead& o : old.heads) {
    const sync::TreeHead* n = find_head(now, o.origin);
    if (n == nullptr || o.tree_size == 0 || n->tree_size <= o.tree_size) continue;
    auto e = std::find_if(origins.begin(), origins.end(), [&](const internal::OriginEntry& x) {
      return x.origin == o.origin && x.error.empty() && x.prefix_size == 0;
    });
    if (e == origins.end()) continue;
    auto leaves = bundle_leaves(dir, *e, n->tree_size);
    if (!leaves) continue;
    out.push_back(ConsistencyProof{o.origin, o.tree_size, n->tree_size,
                                   sync::merkle_consistency_proof(*leaves, o.tree_size)});
  }
  return out;
}

ConsistencyResult check_consistency(const SignedHeads& old, const SignedHeads& now,
                                    const std::vector<ConsistencyProof>& proofs,
                                    const std::optional<NodeId>& origin) {
  ConsistencyResult r;
  r.failure = check_order(old, now);
  if (!r.failure.empty()) return r;
  r.checks.push_back("OLD (" + old.describe() + ") and NEW (" + now.describe() +
                     ") are signed by the root key for one network");
  std::size_t compared = 0;
  for (const sync::TreeHead& o : old.heads) {
    if (origin && o.origin != *origin) continue;
    std::string passed;
    r.failure = check_origin(o, now, proofs, passed);
    if (!r.failure.empty()) return r;
    r.checks.push_back(passed);
    ++compared;
  }
  if (compared == 0) {
    r.failure = "OLD (" + old.describe() + ") names no head" +
                (origin ? " of origin " + sync::id_hex(*origin) : std::string()) + " to compare";
    return r;
  }
  r.valid = true;
  return r;
}

Json consistency_json(const SignedHeads& old, const SignedHeads& now,
                      const std::vector<ConsistencyProof>& proofs, const ConsistencyResult& r) {
  Json list = Json::array();
  for (const auto& p : proofs) list.push_back(proof_json(p));
  return Json{{"format", kConsistencyFormat},
              {"version", kConsistencyVersion},
              {"valid", r.valid},
              {"old", heads_json(old)},
              {"new", heads_json(now)},
              {"proofs", list},
              {"checks", r.checks},
              {"failure", r.valid ? Json() : Json(r.failure)}};
}

}  // namespace outpost::audit
