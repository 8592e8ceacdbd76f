// The verifier. Stages, in order (docs/audit-bundle.md, "What verify checks"):
//   1. files       every file the manifest lists has its size and SHA-256;
//   2. rosters     each version root-signed, one network, each a valid successor of the last;
//   3. ops         frames parsed by this thread, then decoded, re-encoded, hashed and
//                  signature-checked by `workers` threads, which also hash the listed files;
//   4. logs        per origin, in seq order: order in the file, duplicates, equivocation, gaps,
//                  prev links, revocation cut-offs, HLC, request ids, reversals;
//   5. checkpoints signatures, Merkle roots and heads against the ops, consistency proofs; the
//                  tree head sets (every origin HQ knows, with its log length) against the bundle:
//                  a removed origin or a cut log is a finding;
//   6. replay      accepted ops through sync::Replica in HLC order (a linear extension of
//                  causality), checking value and rights after each op and at the end;
//   7. balances    the replayed state against balances.json.
// A finding that makes later checks meaningless suppresses their derived findings (documented
// per case below), so each tampering shows up as the one finding that names its cause.
//
// Pipeline. Ed25519 verification is nearly all of the work, so the workers do nothing else but
// per-op work and file digests, and this thread checks each origin's log, extends its Merkle tree
// and replays the ops *while* they verify, in replay order, as each batch completes
// (stream_checked_ops); whenever it would wait, it checks a batch itself, so `workers` threads
// in all share the cores. That fast path only accepts a log that has no finding at all (every op
// valid, in seq order, chained, ...); at the first op it would not accept, it gives up, and once
// the workers are done the stages run one after another as written below, from scratch. So the
// report never depends on the path: tests run every tamper case both ways and compare.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <span>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <tuple>

#include "bundle_io.h"
#include "outpost/audit/verify.h"
#include "outpost/base/limits.h"
#include "outpost/sync/audit_bundle.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/replica.h"
#include "outpost/sync/roster.h"

namespace outpost::audit {

namespace fs = std::filesystem;
namespace bundle = sync::bundle;
using internal::OriginEntry;
using sync::Hash32;
using sync::MemberId;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

namespace {

// Ops per batch handed to a worker; also the chunk size of a log's entries.
constexpr std::size_t kBatchOps = 512;
// The check family that says whether every origin and every log length HQ vouched for is there.
constexpr const char* kCompletenessCheck =
    "completeness (HQ tree head set: origins, log lengths)";
// Progress callbacks at most this often (in ops).
constexpr std::uint64_t kProgressEveryOps = 16'384;
// Bytes hashed per read when checking file digests.
constexpr std::size_t kHashChunkBytes = 1 << 20;

enum class OpStatus : std::uint8_t {
  kOk,
  kMalformed,     // decode_op refused the bytes
  kNonCanonical,  // decodes, but re-encoding gives other bytes
  kWrongOrigin,   // the op names another origin than its file
  kUnknownOrigin, // no roster lists the op's origin
  kBadSignature,  // the origin's key does not verify the signature
};

struct OpEntry {
  sync::ByteView bytes;  // into the origin file's buffer
  crypto::Signature sig{};
  std::uint64_t offset = 0;  // of the frame in its file
  std::uint64_t seq = 0;     // decoded, or read from the raw bytes; 0 when unknown
  OpStatus status = OpStatus::kMalformed;
  bool decoded = false;
  Op op;
  Hash32 hash{};
  Hash32 leaf{};
  std::string error;
};

struct OriginLog {
  OriginEntry entry;
  std::string hex;
  std::vector<std::uint8_t> data;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> frames;  // (offset, body length)
  // The checked ops in file order (entry i is frame i), in chunks of kBatchOps that the worker of
  // each batch fills in place: nothing is copied or moved afterwards, and pointers stay valid.
  std::vector<std::vector<OpEntry>> chunks;
  std::optional<crypto::PublicKey> key;
  std::optional<std::uint64_t> cutoff;
  bool file_broken = false;   // missing or cut short: the log is known incomplete
  std::uint64_t first_finding_seq = UINT64_MAX;
  std::vector<const OpEntry*> chosen;  // seq first_seq, first_seq + 1, ... while contiguous
  bool gap = false;                    // a seq is missing before a later present one
  std::uint64_t max_seq = 0;           // highest seq present
  std::vector<const OpEntry*> replay;  // the accepted prefix of `chosen`
  sync::MerkleTree tree;               // over the leaves of `chosen`, once built
};

template <typename Fn>
void for_each_entry(const OriginLog& log, Fn&& fn) {
  for (const auto& chunk : log.chunks) {
    for (const OpEntry& e : chunk) fn(e);
  }
}

// The order the replay applies ops in: (HLC, origin, seq).
struct ReplayKey {
  sync::Hlc hlc;
  NodeId origin{};
  std::uint64_t seq = 0;
  auto operator<=>(const ReplayKey&) const = default;
};

// The replay key of an op read straight from its signed bytes (fixed offsets of
// docs/op-format.md), before it is decoded or verified: the same values decoding gives. nullopt
// when the bytes are too short or lack the op magic.
std::optional<ReplayKey> raw_replay_key(sync::ByteView b) {
  if (b.size() < 74 || !std::equal(sync::kOpMagic.begin(), sync::kOpMagic.end(), b.begin())) {
    return std::nullopt;
  }
  auto le = [&](std::size_t at, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{b[at + static_cast<std::size_t>(i)]} << (8 * i);
    return v;
  };
  ReplayKey k;
  std::copy_n(b.begin() + 6, 16, k.origin.begin());
  k.seq = le(22, 8);
  k.hlc.wall_ms = le(62, 8);
  k.hlc.logical = static_cast<std::uint32_t>(le(70, 4));
  return k;
}

std::uint64_t raw_seq(sync::ByteView b) {
  if (b.size() < 30 || !std::equal(sync::kOpMagic.begin(), sync::kOpMagic.end(), b.begin())) {
    return 0;
  }
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{b[22 + static_cast<std::size_t>(i)]} << (8 * i);
  return v;
}

void check_op(OpEntry& e, const NodeId& file_origin,
              const std::map<NodeId, crypto::PublicKey>& keys) {
  e.hash = sync::op_hash(e.bytes, e.sig);
  e.leaf = sync::merkle_op_leaf_hash(e.bytes, e.sig);
  auto op = sync::decode_op(e.bytes);
  if (!op.is_ok()) {
    e.status = OpStatus::kMalformed;
    e.error = op.status().message();
    e.seq = raw_seq(e.bytes);
    return;
  }
  e.op = std::move(op).value();
  e.decoded = true;
  e.seq = e.op.seq;
  const sync::Bytes again = sync::encode_op(e.op);
  if (!std::equal(again.begin(), again.end(), e.bytes.begin(), e.bytes.end())) {
    e.status = OpStatus::kNonCanonical;
    return;
  }
  if (e.op.origin != file_origin) {
    e.status = OpStatus::kWrongOrigin;
    return;
  }
  auto it = keys.find(e.op.origin);
  if (it == keys.end()) {
    e.status = OpStatus::kUnknownOrigin;
    return;
  }
  e.status = crypto::verify(it->second, e.bytes, e.sig) ? OpStatus::kOk : OpStatus::kBadSignature;
}

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

// Whether applying `op` can lower its origin's rights (the ops an origin must check first).
bool lowers_rights(const Op& op) {
  switch (op.kind) {
    case OpKind::kRedeem:
    case OpKind::kSpend:
    case OpKind::kMove:
      return true;
    case OpKind::kReverse:
      return op.ref_kind == OpKind::kEarn || op.ref_kind == OpKind::kTopup;
    default:
      return false;
  }
}

// One entry of the manifest's file list and how it checks out. A worker computes the digest (from
// the verifier's own copy of the file when it reads it anyway), so this thread does not read and
// hash the bundle twice; the findings are added in manifest order once the workers are done.
struct FileCheck {
  std::string rel;
  std::uint64_t listed_bytes = 0;
  std::string listed_sha;
  std::optional<Finding> bad_entry;             // manifest_mismatch: nothing to hash
  const std::vector<std::uint8_t>* data = nullptr;  // the loaded file, when there is one
  // Results.
  bool missing = false;
  std::uint64_t bytes = 0;
  std::string sha;
};

// balances.json, read and parsed by a worker while the signatures are checked.
struct ParsedBalances {
  bool done = false;
  Status read;        // not ok: missing or unreadable
  std::string error;  // not empty: not JSON
  Json doc;
};

// One batch for a worker: the frames of chunk `chunk` of `log`. `done` is set (release) when the
// chunk's entries are filled.
struct Batch {
  OriginLog* log = nullptr;
  std::size_t chunk = 0;
  std::atomic<bool> done{false};
};

// The request ids of one log on the fast path: open addressing over their 64-bit hashes, each
// slot naming the entry that holds the id; strings are compared only when hashes are equal. One
// flat allocation for the whole log instead of a node per op (a million inserts of a node-based
// set were a tenth of this thread's time, mostly cache misses).
class RequestIdSet {
 public:
  void reserve(std::size_t ids) {
    std::size_t cap = 16;
    while (cap < 2 * ids) cap *= 2;  // at most half full: short probe sequences
    slots_.assign(cap, Slot{});
  }
  // Adds the request id of `e`; false if an entry with an equal id was added before.
  bool insert(const OpEntry* e) {
    const std::string_view id = e->op.request_id;
    const std::uint64_t h = std::hash<std::string_view>{}(id);
    OUTPOST_CHECK(2 * (size_ + 1) <= slots_.size());  // reserve() sized it for the whole log
    for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& s = slots_[i];
      if (s.entry == nullptr) {
        s = Slot{h, e};
        ++size_;
        return true;
      }
      if (s.hash == h && s.entry->op.request_id == id) return false;
    }
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    const OpEntry* entry = nullptr;
  };
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

// The state of one origin's log on the pipeline's fast path (Verifier::accept_streamed).
struct StreamState {
  OriginLog* log = nullptr;
  Batch* batches = nullptr;  // the log's batches, by chunk
  std::size_t next = 0;      // index of the next entry to accept
  const OpEntry* prev = nullptr;
  RequestIdSet request_ids;
  std::set<std::uint64_t> reversed;
};

// Rights and value of one account right after a rights-lowering op, for the negative checks.
struct RightsSample {
  const OriginLog* log = nullptr;  // null: the final state
  std::uint64_t seq = 0;
  MemberId member{};
  sync::Account account = sync::Account::kNone;
  NodeId node{};
  std::int64_t rights = 0;
  std::int64_t value = 0;
};

// A head HQ signed for one origin: a checkpoint, or the origin's line in a tree head set.
struct HeadClaim {
  std::uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 head_hash{};
  std::string source;  // "checkpoint" or "tree head set v3", for findings
  bool from_set = false;
};

class Verifier {
 public:
  Verifier(std::string dir, const VerifyOptions& options) : dir_(std::move(dir)), opt_(options) {}

  Result<Report> run();

 private:
  void add(std::string kind, std::string origin, std::uint64_t seq, std::string member,
           std::string file, std::string reason) {
    report_.findings.push_back(Finding{std::move(kind), std::move(origin), seq, std::move(member),
                                       std::move(file), std::move(reason)});
  }
  void add_op(OriginLog& log, const std::string& kind, std::uint64_t seq, const MemberId* member,
              const std::string& reason) {
    log.first_finding_seq = std::min(log.first_finding_seq, seq);
    add(kind, log.hex, seq, member ? sync::id_hex(*member) : "", log.entry.file, reason);
  }
  void progress(const std::string& stage, std::uint64_t done, std::uint64_t total) {
    if (opt_.progress) opt_.progress(stage, done, total);
  }
  bool taint(const MemberId& m) { return tainted_.insert(m).second; }
  bool tainted(const MemberId& m) const { return taint_all_ || tainted_.count(m) > 0; }

  void check_files();
  void hash_file(FileCheck& f) const;
  void add_file_findings();
  void parse_balances();
  bool check_rosters();
  void load_logs();
  void check_ops();
  void check_batch(Batch& b) const;
  void stream_checked_ops(std::vector<Batch>& batches, const std::function<bool()>& run_task,
                          const std::atomic<std::uint64_t>& checked, std::uint64_t total);
  bool accept_streamed(OriginLog& log, StreamState& st, const OpEntry& e);
  void check_log(OriginLog& log);
  std::optional<std::pair<std::string, std::string>> reversal_finding(
      const OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed) const;
  void check_reversal(OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed,
                      bool& reject);
  void check_equivocation_evidence();
  void check_checkpoints();
  void read_checkpoints();
  void read_tree_heads();
  void check_tree_head_sets();
  void check_missing_origin(const NodeId& origin, const std::vector<HeadClaim>& claims);
  void check_origin_checkpoints(OriginLog& log, std::vector<HeadClaim>& claims);
  void replay();
  void after_apply(const OriginLog& log, const Op& op, bool streamed);
  void report_negative(const RightsSample& s);
  void check_final_state();
  void finish_streamed_replay();
  void check_balances();
  void finish_checks(bool roster_ok);
  void judge_completeness(bool roster_ok);

  std::string dir_;
  VerifyOptions opt_;
  Report report_;
  Json manifest_;
  bool partial_ = false;
  std::map<std::string, std::pair<std::uint64_t, std::string>> listed_files_;  // size, sha256
  std::optional<sync::NetworkId> network_;
  std::optional<sync::Roster> roster_;
  std::map<NodeId, crypto::PublicKey> keys_;
  std::vector<std::unique_ptr<OriginLog>> logs_;
  std::map<NodeId, OriginLog*> by_origin_;
  std::set<NodeId> unreadable_origins_;  // named by a malformed manifest entry
  std::set<MemberId> tainted_;
  bool taint_all_ = false;  // an op of unknown member was rejected: no member can be compared
  std::string taint_all_reason_;
  sync::Replica replica_;
  std::uint64_t replayed_ = 0;
  std::uint64_t replay_total_ = 0;
  std::set<std::tuple<MemberId, sync::Account, NodeId, int>> reported_;  // negative_* once each
  // Pipeline: file digests and balances.json done by the workers; whether the fast path checked
  // and replayed every log (else the serial stages run); its rights samples below zero, reported
  // once the taints of the later stages are known.
  std::vector<FileCheck> file_checks_;
  ParsedBalances balances_;
  bool streamed_ = false;
  std::vector<RightsSample> negative_samples_;
  // Stage 5: every HQ-signed head by origin (checkpoints and tree head set lines), the trusted
  // tree head sets (ascending version, one per version), and the nodes of each trusted roster.
  std::map<NodeId, std::vector<HeadClaim>> claims_;
  std::uint64_t checkpoints_valid_ = 0;
  bool tree_heads_file_absent_ = false;
  std::uint64_t tree_heads_read_ = 0;
  std::vector<sync::SignedTreeHeadSet> tree_heads_;
  std::map<std::uint64_t, std::set<NodeId>> roster_nodes_;
  std::vector<std::string> uncovered_nodes_;  // names of roster nodes the newest set lacks
};

// 1. Every listed file exists with the listed size and SHA-256. The manifest itself is not
// signed: these digests catch damage in transit; tampering is caught by the signatures. Here the
// list is parsed; the digests are computed by the workers (hash_file) and reported in this order
// by add_file_findings().
void Verifier::check_files() {
  std::uint64_t n = 0;
  for (const auto& f : manifest_["files"]) {
    FileCheck c;
    auto path = internal::json_string(f, "path", "manifest file entry");
    auto sha = internal::json_string(f, "sha256", "manifest file entry");
    if (!path.is_ok() || !sha.is_ok() || !f.contains("bytes") || !f["bytes"].is_number_unsigned()) {
      c.bad_entry = Finding{"manifest_mismatch", "", 0, "", bundle::kManifestFile,
                            "a file entry lacks path, bytes or sha256: " + f.dump()};
      file_checks_.push_back(std::move(c));
      continue;
    }
    auto rel = internal::checked_relative_path(*path);
    if (!rel.is_ok()) {
      c.bad_entry = Finding{"manifest_mismatch", "", 0, "", bundle::kManifestFile,
                            rel.status().message()};
      file_checks_.push_back(std::move(c));
      continue;
    }
    ++n;
    listed_files_[*rel] = {f["bytes"].get<std::uint64_t>(), *sha};
    c.rel = *rel;
    c.listed_bytes = f["bytes"].get<std::uint64_t>();
    c.listed_sha = *sha;
    file_checks_.push_back(std::move(c));
  }
  report_.counts["files"] = n;
}

// Computes one listed file's size and SHA-256, from the loaded copy or read in chunks. Touches
// only `f`: safe on a worker.
void Verifier::hash_file(FileCheck& f) const {
  if (f.bad_entry) return;
  crypto::Sha256 h;
  if (f.data != nullptr) {
    h.update(*f.data);
    f.bytes = f.data->size();
  } else {
    std::ifstream in(internal::bundle_path(dir_, f.rel), std::ios::binary);
    if (!in) {
      f.missing = true;
      return;
    }
    std::vector<char> buf(kHashChunkBytes);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto got = static_cast<std::size_t>(in.gcount());
      h.update(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(buf.data()), got));
      f.bytes += got;
    }
  }
  f.sha = crypto::to_hex(h.finish());
}

// The file findings, in manifest order, ahead of every other finding (the files stage is first).
void Verifier::add_file_findings() {
  std::vector<Finding> out;
  for (FileCheck& f : file_checks_) {
    if (f.bad_entry) {
      out.push_back(*f.bad_entry);
    } else if (f.missing) {
      out.push_back(Finding{"file_missing", "", 0, "", f.rel,
                            "the manifest lists " + f.rel + " but it is missing"});
    } else if (f.bytes != f.listed_bytes || f.sha != f.listed_sha) {
      out.push_back(Finding{"file_hash_mismatch", "", 0, "", f.rel,
                            f.rel + " is " + std::to_string(f.bytes) + " bytes with SHA-256 " +
                                f.sha + "; the manifest lists " + std::to_string(f.listed_bytes) +
                                " bytes, " + f.listed_sha});
    }
  }
  report_.findings.insert(report_.findings.begin(), out.begin(), out.end());
  file_checks_.clear();
}

// Reads and parses balances.json (on a worker; check_balances() judges the result).
void Verifier::parse_balances() {
  balances_.done = true;
  auto data = read_whole_file(internal::bundle_path(dir_, bundle::kBalancesFile),
                              bundle::kJsonFileBytesMax);
  if (!data.is_ok()) {
    balances_.read = data.status();
    return;
  }
  try {
    balances_.doc = Json::parse(data->begin(), data->end());
  } catch (const std::exception& e) {
    balances_.error = e.what();
  }
}

// 2. The roster chain. Returns false when no version verifies under the root: nothing in the
// bundle can then be authenticated, and verification stops there.
bool Verifier::check_rosters() {
  const std::string file = bundle::kRostersFile;
  auto data = read_whole_file(internal::bundle_path(dir_, file), bundle::kBinaryFileBytesMax);
  if (!data.is_ok()) {
    if (!listed_files_.count(file)) add("file_missing", "", 0, "", file, data.status().message());
    return false;
  }
  std::size_t offset = 0;
  std::uint64_t read = 0, trusted = 0;
  while (offset < data->size()) {
    auto frame = sync::read_frame(*data, offset, limits::kRosterBytesMax);
    if (!frame.is_ok()) {
      add("malformed_file", "", 0, "", file,
          "at byte " + std::to_string(offset) + ": " + frame.status().message());
      break;
    }
    ++read;
    auto decoded = sync::decode_roster(frame->body);
    if (!decoded.is_ok()) {
      add("malformed_roster", "", 0, "", file,
          "roster #" + std::to_string(read) + ": " + decoded.status().message());
      continue;
    }
    const std::string what = "roster v" + std::to_string(decoded->version);
    auto verified = sync::verify_roster(frame->body, crypto::ByteView(frame->sig), opt_.root,
                                        decoded->network_id);
    if (!verified.is_ok()) {
      add("roster_signature", "", 0, "", file, what + ": " + verified.status().message());
      continue;
    }
    if (network_ && decoded->network_id != *network_) {
      add("roster_network", "", 0, "", file,
          what + " names network " + crypto::to_hex(decoded->network_id) + ", not " +
              crypto::to_hex(*network_));
      continue;
    }
    if (roster_) {
      Status st = sync::check_roster_successor(*roster_, verified->roster);
      if (!st.is_ok()) {
        add("roster_successor", "", 0, "", file,
            what + " may not follow v" + std::to_string(roster_->version) + ": " + st.message());
        continue;
      }
    }
    network_ = decoded->network_id;
    roster_ = std::move(verified->roster);
    std::set<NodeId>& nodes = roster_nodes_[roster_->version];
    for (const auto& sc : roster_->certificates) nodes.insert(sc.cert.node_id);
    ++trusted;
  }
  report_.counts["rosters"] = read;
  report_.counts["rosters_trusted"] = trusted;
  if (!roster_) return false;
  if (manifest_.contains("network_id") &&
      manifest_["network_id"] != crypto::to_hex(*network_)) {
    add("manifest_mismatch", "", 0, "", bundle::kManifestFile,
        "the manifest names network " + manifest_["network_id"].dump() +
            " but the root-signed rosters name " + crypto::to_hex(*network_));
  }
  // Nodes are never dropped from a roster, so the newest trusted version holds every key and
  // every revocation.
  for (const auto& sc : roster_->certificates) keys_[sc.cert.node_id] = sc.cert.signing_key;
  report_.counts["roster_version"] = roster_->version;
  return true;
}

void Verifier::load_logs() {
  auto origins = internal::bundle_origins(dir_, manifest_);
  std::vector<OriginEntry> list = origins.is_ok() ? std::move(origins).value()
                                                  : std::vector<OriginEntry>();
  if (!origins.is_ok()) {
    add("manifest_mismatch", "", 0, "", bundle::kManifestFile, origins.status().message());
  }
  for (auto& e : list) {
    if (!e.error.empty()) {
      // One malformed entry spoils its own origin only: the others are verified as usual, and
      // this origin is not reported again as missing (check_missing_origin).
      const bool named = e.origin != NodeId{};
      const bool loaded = named && by_origin_.count(e.origin) > 0;  // a second entry
      add("manifest_mismatch", named ? sync::id_hex(e.origin) : "", 0, "", bundle::kManifestFile,
          e.error + (loaded ? "" : "; this log is not verified"));
      if (loaded) continue;
      if (named) unreadable_origins_.insert(e.origin);
      taint_all_ = true;
      taint_all_reason_ = "a log the manifest announces could not be read: its members are unknown";
      continue;
    }
    auto log = std::make_unique<OriginLog>();
    log->hex = sync::id_hex(e.origin);
    log->entry = std::move(e);
    if (!log->entry.listed) {
      report_.notes.push_back(log->entry.file + " is not listed in the manifest; verified anyway");
    }
    auto data = read_whole_file(internal::bundle_path(dir_, log->entry.file),
                                bundle::kBinaryFileBytesMax);
    if (!data.is_ok()) {
      log->file_broken = true;
      if (!listed_files_.count(log->entry.file)) {
        add("file_missing", log->hex, 0, "", log->entry.file, data.status().message());
      }
    } else {
      log->data = std::move(data).value();
    }
    std::size_t offset = 0;
    while (offset < log->data.size()) {
      const std::size_t at = offset;
      auto frame = sync::read_frame(log->data, offset, limits::kOpSignedBytesMax);
      if (!frame.is_ok()) {
        log->file_broken = true;
        add("malformed_file", log->hex, 0, "", log->entry.file,
            "at byte " + std::to_string(at) + ": " + frame.status().message() +
                "; the rest of the file is unreadable");
        break;
      }
      log->frames.emplace_back(at, static_cast<std::uint32_t>(frame->body.size()));
    }
    if (auto it = keys_.find(log->entry.origin); it != keys_.end()) log->key = it->second;
    if (const sync::Revocation* rev = roster_->revocation(log->entry.origin)) {
      log->cutoff = rev->after_seq;
    }
    by_origin_[log->entry.origin] = log.get();
    logs_.push_back(std::move(log));
  }
}

// 3. Decoding and signatures. Workers take tasks from one list by an atomic index: first the file
// digests and balances.json, then the batches in replay order (by the HLC of their first op). Each
// batch fills its chunk of entries in place. Meanwhile this thread runs the fast path of stages 4
// and 6 on the batches as they complete (stream_checked_ops).
void Verifier::check_ops() {
  for (auto& log : logs_) {
    for (FileCheck& f : file_checks_) {
      if (!log->file_broken && f.rel == log->entry.file) f.data = &log->data;
    }
  }
  std::size_t nbatches = 0;
  std::uint64_t total = 0;
  for (auto& log : logs_) {
    log->chunks.resize((log->frames.size() + kBatchOps - 1) / kBatchOps);
    nbatches += log->chunks.size();
    total += log->frames.size();
  }
  std::vector<Batch> batches(nbatches);
  std::vector<std::pair<std::optional<ReplayKey>, Batch*>> by_key;
  by_key.reserve(nbatches);
  std::size_t k = 0;
  for (auto& log : logs_) {
    for (std::size_t c = 0; c < log->chunks.size(); ++c, ++k) {
      batches[k].log = log.get();
      batches[k].chunk = c;
      const auto [offset, len] = log->frames[c * kBatchOps];
      by_key.emplace_back(raw_replay_key(sync::ByteView(log->data.data() + offset + 4, len)),
                          &batches[k]);
    }
  }
  // Unreadable keys sort first (nullopt < any key): they stop the fast path early.
  std::stable_sort(by_key.begin(), by_key.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  const bool want_balances = !partial_;
  const std::size_t ntasks = file_checks_.size() + (want_balances ? 1 : 0) + nbatches;
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> checked{0};
  // Runs the next task on the calling thread; false when every task is taken.
  auto run_task = [&] {
    std::size_t i = next.fetch_add(1);
    if (i >= ntasks) return false;
    if (i < file_checks_.size()) {
      hash_file(file_checks_[i]);
      return true;
    }
    i -= file_checks_.size();
    if (want_balances && i == 0) {
      parse_balances();
      return true;
    }
    Batch& b = *by_key[i - (want_balances ? 1 : 0)].second;
    check_batch(b);
    checked.fetch_add(b.log->chunks[b.chunk].size(), std::memory_order_relaxed);
    b.done.store(true, std::memory_order_release);
    b.done.notify_all();
    return true;
  };
  // `workers` threads in all: this one is a worker too whenever the fast path has nothing to do,
  // so the cores are never shared by more threads than there are.
  const unsigned workers = std::clamp(opt_.workers, 1u, kWorkersMax);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < workers; ++i) {
    threads.emplace_back([&] {
      while (run_task()) {
      }
    });
  }
  stream_checked_ops(batches, run_task, checked, total);
  while (run_task()) progress("signatures", checked.load(std::memory_order_relaxed), total);
  for (auto& t : threads) t.join();
  progress("signatures", total, total);

  std::uint64_t ok = 0;
  for (const auto& log : logs_) {
    for_each_entry(*log, [&](const OpEntry& e) { ok += e.status == OpStatus::kOk ? 1 : 0; });
  }
  report_.counts["ops"] = total;
  report_.counts["ops_signature_ok"] = ok;
}

// Fills the chunk of batch `b`: each op decoded, re-encoded, hashed, leaf-hashed and
// signature-checked. Touches only that chunk: safe on a worker.
void Verifier::check_batch(Batch& b) const {
  OriginLog& log = *b.log;
  std::vector<OpEntry>& chunk = log.chunks[b.chunk];
  const std::size_t first = b.chunk * kBatchOps;
  chunk.resize(std::min(kBatchOps, log.frames.size() - first));
  for (std::size_t k = 0; k < chunk.size(); ++k) {
    OpEntry& e = chunk[k];
    const auto [offset, len] = log.frames[first + k];
    e.offset = offset;
    e.bytes = sync::ByteView(log.data.data() + offset + 4, len);
    std::copy_n(log.data.data() + offset + 4 + len, 64, e.sig.begin());
    check_op(e, log.entry.origin, keys_);
  }
}

// The pipeline's fast path, on this thread while the workers check signatures: takes the ops in
// replay order (a merge of the origins' files by the key read from their bytes), waits for each
// op's batch (running other tasks meanwhile: `run_task`), accepts it into its log
// (accept_streamed) and replays it. Gives up, leaving the serial stages to do everything, at the
// first op the fast path cannot accept (or when it does not apply: a date-range bundle, an
// incomplete file, opt_.pipeline off).
void Verifier::stream_checked_ops(std::vector<Batch>& batches,
                                  const std::function<bool()>& run_task,
                                  const std::atomic<std::uint64_t>& checked, std::uint64_t total) {
  bool ok = opt_.pipeline && !partial_;
  for (const auto& log : logs_) ok = ok && !log->file_broken && log->entry.first_seq == 1;
  // Batches are laid out log after log, chunk after chunk (check_ops).
  std::vector<StreamState> state(logs_.size());
  for (std::size_t i = 0, first = 0; i < logs_.size(); first += logs_[i]->chunks.size(), ++i) {
    state[i].log = logs_[i].get();
    state[i].batches = batches.data() + first;
    state[i].request_ids.reserve(logs_[i]->frames.size());
  }
  using Item = std::pair<ReplayKey, StreamState*>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  auto push_next = [&](StreamState& st) {
    if (st.next >= st.log->frames.size()) return true;
    const auto [offset, len] = st.log->frames[st.next];
    auto key = raw_replay_key(sync::ByteView(st.log->data.data() + offset + 4, len));
    if (!key) return false;
    heap.emplace(*key, &st);
    return true;
  };
  for (StreamState& st : state) ok = ok && push_next(st);
  std::uint64_t next_report = kProgressEveryOps;
  while (ok && !heap.empty()) {
    StreamState& st = *heap.top().second;
    heap.pop();
    Batch& b = st.batches[st.next / kBatchOps];
    while (!b.done.load(std::memory_order_acquire)) {
      if (!run_task()) b.done.wait(false, std::memory_order_acquire);
    }
    OriginLog& log = *st.log;
    const OpEntry& e = log.chunks[b.chunk][st.next % kBatchOps];
    ok = accept_streamed(log, st, e);
    if (ok) {
      auto applied = replica_.apply(e.op);
      ok = applied.is_ok();  // a refused op (counter overflow) is a finding: the serial path
      if (ok) after_apply(log, e.op, /*streamed=*/true);
    }
    ++st.next;
    ok = ok && push_next(st);
    const std::uint64_t done = checked.load(std::memory_order_relaxed);
    if (done >= next_report) {
      progress("signatures", done, total);
      next_report = done + kProgressEveryOps;
    }
  }
  streamed_ = ok;
  if (!ok) {
    // Undo the fast path's partial work; the serial stages start from nothing.
    for (auto& log : logs_) {
      log->chosen.clear();
      log->replay.clear();
      log->tree = sync::MerkleTree();
      log->max_seq = 0;
    }
    replica_ = sync::Replica();
    replayed_ = 0;
    report_.trace.clear();
    negative_samples_.clear();
  }
}

// Accepts the next entry of a log on the fast path if stage 4 would find nothing wrong with it:
// validly signed, the next seq, chained to the op before, a later HLC, not past a revocation
// cut-off, a fresh request id, a sound reversal. Then it is chosen and replayed, like check_log()
// does. Returns false otherwise (the serial stages will report why).
bool Verifier::accept_streamed(OriginLog& log, StreamState& st, const OpEntry& e) {
  if (e.status != OpStatus::kOk) return false;
  const Op& op = e.op;
  if (op.seq != log.entry.first_seq + log.chosen.size()) return false;
  if (st.prev != nullptr && (op.prev != st.prev->hash || op.hlc <= st.prev->op.hlc)) return false;
  if (log.cutoff && op.seq > *log.cutoff) return false;
  if (!op.request_id.empty() && !st.request_ids.insert(&e)) return false;
  if (op.kind == OpKind::kReverse && reversal_finding(log, e, st.reversed)) return false;
  log.chosen.push_back(&e);
  log.replay.push_back(&e);
  log.tree.append(e.leaf);
  log.max_seq = op.seq;
  st.prev = &e;
  return true;
}

// The finding a reversal makes, as (kind, reason), or nullopt. Records its target in `reversed`.
// The op it reverses is looked up among the ops chosen so far.
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
  if (r.kind != op.ref_kind) {
    why = "names kind " + std::string(sync::kind_name(op.ref_kind)) + " but op " +
          std::to_string(op.ref_seq) + " is a " + sync::kind_name(r.kind);
  } else if (r.member != op.member || r.amount != op.amount ||
             (r.kind == OpKind::kEarn && r.spend_minor != op.spend_minor)) {
    why = "does not undo op " + std::to_string(op.ref_seq) + " exactly (member, amount or "
          "purchase differ)";
  }
  if (why.empty()) return std::nullopt;
  return std::make_pair("bad_reversal", "reversal " + why);
}

void Verifier::check_reversal(OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed,
                              bool& reject) {
  auto finding = reversal_finding(log, e, reversed);
  if (!finding) return;
  add_op(log, finding->first, e.op.seq, &e.op.member, finding->second);
  reject = true;
}

// 4. One origin's log, walked in seq order.
void Verifier::check_log(OriginLog& log) {
  // Per-op results of stage 3, in file order.
  std::uint64_t unknown = 0;
  for_each_entry(log, [&](const OpEntry& e) {
    const MemberId* m = e.decoded ? &e.op.member : nullptr;
    switch (e.status) {
      case OpStatus::kOk: break;
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
      case OpStatus::kUnknownOrigin: ++unknown; break;
      case OpStatus::kBadSignature:
        add_op(log, "bad_signature", e.seq, m,
               "the signature does not verify under the origin's certificate key "
               "(altered bytes, or signed by another key)");
        break;
    }
    if (e.status != OpStatus::kOk) {
      // An op that is not authenticated names no member that can be trusted (the member field
      // may be the byte that was altered), so the missing op's effect may be on anyone's state.
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

  // Order in the file: seqs must ascend.
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

  // Group by seq.
  std::vector<const OpEntry*> sorted;
  sorted.reserve(log.frames.size());
  for_each_entry(log, [&](const OpEntry& e) {
    if (e.seq != 0) sorted.push_back(&e);
  });
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const OpEntry* a, const OpEntry* b) { return a->seq < b->seq; });

  const std::uint64_t first = log.entry.first_seq;
  std::uint64_t expect = first;
  const OpEntry* prev = nullptr;  // chosen op of seq expect - 1, when contiguous
  bool open = true;               // replay still takes this origin's ops
  std::unordered_map<std::string_view, std::uint64_t> request_ids;  // views into the entries
  request_ids.reserve(log.frames.size());
  std::set<std::uint64_t> reversed;
  for (std::size_t i = 0; i < sorted.size();) {
    const std::uint64_t s = sorted[i]->seq;
    std::size_t j = i;
    while (j < sorted.size() && sorted[j]->seq == s) ++j;
    std::size_t k = j;
    while (k < sorted.size() && sorted[k]->seq == sorted[j]->seq) ++k;
    const std::span<const OpEntry* const> group(sorted.data() + i, j - i);
    const std::span<const OpEntry* const> next_group(sorted.data() + j, k - j);
    i = j;
    if (s < first) {
      add_op(log, "out_of_order", s, group[0]->decoded ? &group[0]->op.member : nullptr,
             "seq " + std::to_string(s) + " precedes the first seq " + std::to_string(first) +
                 " the manifest announces for this origin");
      continue;
    }
    if (s > expect) {
      add_op(log, "seq_gap", expect, nullptr,
             s - expect == 1 ? "op " + std::to_string(expect) + " is missing (the log goes on at " +
                                   std::to_string(s) + ")"
                             : "ops " + std::to_string(expect) + ".." + std::to_string(s - 1) +
                                   " are missing");
      log.gap = true;
      prev = nullptr;
      // The missing ops' members are unknown, so no member's exported state can be trusted to
      // match a replay without them.
      taint_all_ = true;
      taint_all_reason_ = "a log has a gap: the missing ops' members are unknown";
    }
    // Equivocation and duplicates among the validly signed ops of this seq.
    const OpEntry* first_valid = nullptr;
    std::size_t nvalid = 0;
    for (const OpEntry* e : group) {
      if (e->status != OpStatus::kOk) continue;
      if (first_valid == nullptr) first_valid = e;
      ++nvalid;
    }
    // The op the chain continues from: the one the next seq's prev names, else the first.
    const OpEntry* chosen = first_valid ? first_valid : group[0];
    if (nvalid > 1) {
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
        add_op(log, "duplicate_op", s, &first_valid->op.member,
               "the same op appears " + std::to_string(nvalid - hashes.size() + 1) +
                   " times in the file");
      }
    }
    const bool ok = chosen->status == OpStatus::kOk;
    bool reject = !ok;
    if (ok) {
      const Op& op = chosen->op;
      // Each finding of the op's own below also keeps it (and the rest of its origin) out of the
      // replay: its effect is not one the origin could have made (docs/audit-bundle.md).
      if (prev != nullptr && prev->status == OpStatus::kOk && op.prev != prev->hash) {
        add_op(log, "prev_mismatch", s, &op.member,
               "prev does not match the hash of op " + std::to_string(s - 1) +
                   ": the chain is broken here");
        reject = true;
      } else if (prev == nullptr && s == first && first > 1 && op.prev != log.entry.prefix_prev) {
        add_op(log, "prev_mismatch", s, &op.member,
               "prev does not match the hash of op " + std::to_string(s - 1) +
                   " the manifest's prefix names");
        reject = true;
      }
      if (prev != nullptr && prev->status == OpStatus::kOk && op.hlc <= prev->op.hlc) {
        add_op(log, "hlc_backwards", s, &op.member,
               "HLC " + op.hlc.to_string() + " is not after op " + std::to_string(s - 1) + "'s " +
                   prev->op.hlc.to_string());
        reject = true;
      }
      if (log.cutoff && s > *log.cutoff) {
        add_op(log, "revoked_op", s, &op.member,
               "signed after the origin's revocation cut-off (seq " +
                   std::to_string(*log.cutoff) + "): invalid everywhere");
        reject = true;
      }
      if (!op.request_id.empty()) {
        auto [it, fresh] = request_ids.emplace(op.request_id, s);
        if (!fresh) {
          add_op(log, "duplicate_request_id", s, &op.member,
                 "request_id '" + op.request_id + "' was already applied by op " +
                     std::to_string(it->second) + " of this origin");
          reject = true;
        }
      }
      if (op.kind == OpKind::kReverse) check_reversal(log, *chosen, reversed, reject);
    }
    if (!log.gap) log.chosen.push_back(chosen);
    if (open && !log.gap && !reject) {
      log.replay.push_back(chosen);
    } else {
      open = false;
    }
    if (!open) {
      for (const OpEntry* e : group) {
        if (e->decoded) taint(e->op.member);
      }
    }
    prev = chosen;
    expect = s + 1;
  }
}

// Equivocation evidence HQ kept: a validly signed op that differs from the log's op of its seq.
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
      add("malformed_op", "", 0, "", file, "evidence #" + std::to_string(n) + ": " +
                                               op.status().message());
      continue;
    }
    auto key = keys_.find(op->origin);
    if (key == keys_.end() || !crypto::verify(key->second, frame->body, frame->sig)) {
      add("bad_signature", sync::id_hex(op->origin), op->seq, sync::id_hex(op->member), file,
          "equivocation evidence that its origin did not sign");
      continue;
    }
    const Hash32 h = sync::op_hash(frame->body, frame->sig);
    auto it = by_origin_.find(op->origin);
    const OpEntry* held = nullptr;
    if (it != by_origin_.end()) {
      const OriginLog& log = *it->second;
      if (op->seq >= log.entry.first_seq && op->seq - log.entry.first_seq < log.chosen.size()) {
        held = log.chosen[op->seq - log.entry.first_seq];
      }
    }
    if (held != nullptr && held->hash == h) continue;  // the log's own op: no conflict
    add("equivocation", sync::id_hex(op->origin), op->seq, sync::id_hex(op->member), file,
        held ? "HQ holds a second op signed by the origin for this seq (hash " +
                   crypto::to_hex(h) + "; the log's op is " + crypto::to_hex(held->hash) + ")"
             : "HQ holds an op signed by the origin for this seq that is not in the log");
  }
  report_.counts["equivocation_evidence"] = n;
}

// 5. Checkpoints and tree head sets. Every HQ-signed head (a checkpoint, or one origin's line of a
// tree head set) is a claim "HQ held ops 1..n of this origin, with this root and head"; each is
// checked against the origin's log. The newest tree head set also says which origins must be
// there at all: a claim for an origin the bundle has no log of is a removed origin.
void Verifier::check_checkpoints() {
  read_checkpoints();
  read_tree_heads();
  check_tree_head_sets();
  for (auto& [origin, claims] : claims_) {
    auto it = by_origin_.find(origin);
    if (it == by_origin_.end()) {
      check_missing_origin(origin, claims);
      continue;
    }
    check_origin_checkpoints(*it->second, claims);
  }
}

void Verifier::read_checkpoints() {
  const std::string file = bundle::kCheckpointsFile;
  auto data = read_whole_file(internal::bundle_path(dir_, file), bundle::kBinaryFileBytesMax);
  if (!data.is_ok()) {
    if (!listed_files_.count(file)) add("file_missing", "", 0, "", file, data.status().message());
    return;
  }
  std::size_t offset = 0;
  std::uint64_t read = 0;
  while (offset < data->size()) {
    auto frame = sync::read_frame(*data, offset, 4 * sync::kCheckpointBytes);
    if (!frame.is_ok()) {
      add("malformed_file", "", 0, "", file,
          "at byte " + std::to_string(offset) + ": " + frame.status().message());
      break;
    }
    ++read;
    auto decoded = sync::decode_checkpoint(frame->body);
    const std::string origin = decoded.is_ok() ? sync::id_hex(decoded->origin) : "";
    const std::uint64_t seq = decoded.is_ok() ? decoded->tree_size : 0;
    auto cp = sync::verify_checkpoint(frame->body, crypto::ByteView(frame->sig), opt_.root);
    if (!cp.is_ok()) {
      const bool sig = cp.status().code() == Code::kPermission;
      add(sig ? "checkpoint_signature" : "malformed_checkpoint", origin, seq, "", file,
          "checkpoint #" + std::to_string(read) + ": " + cp.status().message() +
              (sig ? " (its bytes were altered, or another key signed it)" : ""));
      continue;
    }
    if (cp->cp.network_id != *network_) {
      add("checkpoint_network", origin, seq, "", file, "checkpoint of another network");
      continue;
    }
    if (!keys_.count(cp->cp.origin)) {
      add("checkpoint_unknown_origin", origin, seq, "", file,
          "HQ signed a checkpoint for an origin no roster lists");
    }
    ++checkpoints_valid_;
    claims_[cp->cp.origin].push_back(
        HeadClaim{cp->cp.tree_size, cp->cp.root, cp->cp.head_hash, "checkpoint", false});
  }
  report_.counts["checkpoints"] = read;
  report_.counts["checkpoints_signature_ok"] = checkpoints_valid_;
}

// Reads tree_heads.bin: each set root-signed and of this network; kept ascending by version.
void Verifier::read_tree_heads() {
  const std::string file = bundle::kTreeHeadsFile;
  auto data = read_whole_file(internal::bundle_path(dir_, file), bundle::kBinaryFileBytesMax);
  if (!data.is_ok()) {
    // A listed file that is missing is a file finding already; an unlisted one is judged with
    // the checkpoints in check_tree_head_sets().
    tree_heads_file_absent_ = !listed_files_.count(file);
    return;
  }
  std::size_t offset = 0;
  while (offset < data->size()) {
    auto frame = sync::read_frame(*data, offset, sync::kTreeHeadSetBytesMax);
    if (!frame.is_ok()) {
      add("malformed_file", "", 0, "", file,
          "at byte " + std::to_string(offset) + ": " + frame.status().message());
      break;
    }
    ++tree_heads_read_;
    const std::string what = "tree head set #" + std::to_string(tree_heads_read_);
    auto set = sync::verify_tree_head_set(frame->body, crypto::ByteView(frame->sig), opt_.root);
    if (!set.is_ok()) {
      const bool sig = set.status().code() == Code::kPermission;
      add(sig ? "tree_heads_signature" : "malformed_tree_heads", "", 0, "", file,
          what + ": " + set.status().message() +
              (sig ? " (its bytes were altered, or another key signed it)" : ""));
      continue;
    }
    if (set->set.network_id != *network_) {
      add("tree_heads_network", "", 0, "", file,
          what + " (v" + std::to_string(set->set.version) + ") names another network");
      continue;
    }
    tree_heads_.push_back(std::move(set).value());
  }
  report_.counts["tree_heads"] = tree_heads_read_;
  report_.counts["tree_heads_signature_ok"] = tree_heads_.size();
  std::stable_sort(tree_heads_.begin(), tree_heads_.end(), [](const auto& a, const auto& b) {
    return a.set.version < b.set.version;
  });
  // One version names one set: a second, different body is HQ contradicting itself.
  std::vector<sync::SignedTreeHeadSet> distinct;
  for (auto& t : tree_heads_) {
    if (!distinct.empty() && distinct.back().set.version == t.set.version) {
      if (distinct.back().body != t.body) {
        add("tree_heads_conflict", "", t.set.version, "", file,
            "HQ signed two different tree head sets with version " +
                std::to_string(t.set.version));
      }
      continue;
    }
    distinct.push_back(std::move(t));
  }
  tree_heads_ = std::move(distinct);
}

// The sets among themselves and against the rosters; their lines become claims.
void Verifier::check_tree_head_sets() {
  const std::string file = bundle::kTreeHeadsFile;
  if (tree_heads_.empty()) {
    if (tree_heads_file_absent_ || tree_heads_read_ == 0) {
      if (checkpoints_valid_ > 0) {
        add("tree_heads_missing", "", 0, "", file,
            "the bundle holds HQ checkpoints but no tree head set, so nothing signed says which "
            "origins and how many ops must be present: it was removed, or the bundle predates "
            "tree head sets (run `outpost hq checkpoint` and export again)");
      } else {
        report_.notes.push_back(
            "the bundle holds no HQ-signed checkpoint or tree head set: nothing proves that no "
            "origin and no log tail was removed (HQ signs them with `outpost hq checkpoint`)");
      }
    }
    return;
  }
  std::set<NodeId> unknown_reported;
  for (std::size_t i = 0; i < tree_heads_.size(); ++i) {
    const sync::TreeHeadSet& set = tree_heads_[i].set;
    const std::string what = "tree head set v" + std::to_string(set.version);
    // Successive versions only grow: no origin dropped, no log shrunk, no older roster. (Two
    // heads of one size that differ are a checkpoint_conflict below, with every other claim.)
    if (i > 0) {
      const sync::TreeHeadSet& prev = tree_heads_[i - 1].set;
      if (set.roster_version < prev.roster_version) {
        add("tree_heads_successor", "", set.version, "", file,
            what + " names roster v" + std::to_string(set.roster_version) + ", older than v" +
                std::to_string(prev.roster_version) + " in v" + std::to_string(prev.version));
      }
      for (const sync::TreeHead& old : prev.heads) {
        const sync::TreeHead* now = set.find(old.origin);
        if (now == nullptr) {
          add("tree_heads_successor", sync::id_hex(old.origin), old.tree_size, "", file,
              what + " drops this origin, which v" + std::to_string(prev.version) + " listed");
        } else if (now->tree_size < old.tree_size) {
          add("tree_heads_successor", sync::id_hex(old.origin), now->tree_size, "", file,
              what + " shrinks this origin's log to " + std::to_string(now->tree_size) +
                  " ops; v" + std::to_string(prev.version) + " said " +
                  std::to_string(old.tree_size));
        }
      }
    }
    // Every node of the roster the set was signed under has a line.
    bool roster_missing = false;
    if (auto r = roster_nodes_.find(set.roster_version); r != roster_nodes_.end()) {
      for (const NodeId& node : r->second) {
        if (set.find(node) == nullptr) {
          add("tree_heads_roster", sync::id_hex(node), 0, "", file,
              what + " leaves out this node of roster v" + std::to_string(set.roster_version) +
                  ", under which HQ signed it");
        }
      }
    } else if (set.roster_version > roster_->version) {
      roster_missing = true;
      add("tree_heads_roster", "", set.version, "", bundle::kRostersFile,
          what + " was signed under roster v" + std::to_string(set.roster_version) +
              ", but the newest trusted roster in the bundle is v" +
              std::to_string(roster_->version) + ": rosters were removed");
    }
    for (const sync::TreeHead& h : set.heads) {
      if (!keys_.count(h.origin) && !roster_missing && unknown_reported.insert(h.origin).second) {
        add("checkpoint_unknown_origin", sync::id_hex(h.origin), h.tree_size, "", file,
            what + " lists an origin no roster lists");
      }
      if (h.tree_size == 0) continue;
      claims_[h.origin].push_back(HeadClaim{h.tree_size, h.root, h.head_hash, what, true});
    }
  }
  // What the newest set vouches for, and the nodes it cannot cover (enrolled after it).
  const sync::TreeHeadSet& newest = tree_heads_.back().set;
  report_.tree_head = Json{{"version", newest.version},
                           {"issued_ms", newest.issued.wall_ms},
                           {"roster_version", newest.roster_version},
                           {"origins", newest.heads.size()},
                           {"ops", newest.total_ops()}};
  report_.counts["tree_head_version"] = newest.version;
  std::vector<std::string>& later = uncovered_nodes_;
  for (const auto& sc : roster_->certificates) {
    if (newest.find(sc.cert.node_id) == nullptr) later.push_back(sc.cert.name);
  }
  if (!later.empty()) {
    std::string names;
    for (std::size_t i = 0; i < later.size() && i < 10; ++i) {
      names += (i ? ", " : "") + later[i];
    }
    if (later.size() > 10) names += ", ...";
    report_.notes.push_back(std::to_string(later.size()) +
                            " node(s) enrolled after tree head set v" +
                            std::to_string(newest.version) + " (" + names +
                            "): no HQ-signed head covers their ops yet");
  }
}

// HQ signed heads for `origin` but the bundle has no log of it at all.
void Verifier::check_missing_origin(const NodeId& origin, const std::vector<HeadClaim>& claims) {
  if (!keys_.count(origin)) return;  // checkpoint_unknown_origin says it already
  if (unreadable_origins_.count(origin)) return;  // its manifest_mismatch says it already
  const HeadClaim* newest = nullptr;
  for (const HeadClaim& c : claims) {
    // A date-range bundle leaves out origins with no op in the range; the exporter keeps only
    // checkpoints of exported origins, so only those still prove a removal there.
    if (partial_ && c.from_set) continue;
    if (newest == nullptr || c.tree_size > newest->tree_size) newest = &c;
  }
  if (newest == nullptr) return;
  const sync::SignedCertificate* cert = roster_->find(origin);
  const std::string name = cert ? " (" + cert->cert.name + ")" : "";
  add("missing_origin", sync::id_hex(origin), newest->tree_size, "", "",
      "HQ's " + newest->source + " says it holds " + std::to_string(newest->tree_size) +
          " ops of this origin" + name + ", but the bundle has no log for it: the origin was "
          "removed");
  taint_all_ = true;
  taint_all_reason_ = "an origin HQ holds ops of is missing: its members are unknown";
}

void Verifier::check_origin_checkpoints(OriginLog& log, std::vector<HeadClaim>& claims) {
  // Group the claims by size; equal claims (a checkpoint and a set line) are one head, and two
  // different heads for one size are HQ contradicting itself (one checkpoint_conflict).
  std::sort(claims.begin(), claims.end(), [](const HeadClaim& a, const HeadClaim& b) {
    return std::tie(a.tree_size, a.root, a.head_hash, a.from_set) <
           std::tie(b.tree_size, b.root, b.head_hash, b.from_set);
  });
  struct SizeGroup {
    std::uint64_t n = 0;
    std::vector<const HeadClaim*> variants;  // distinct (root, head hash)
    bool has_checkpoint = false;
  };
  std::vector<SizeGroup> groups;
  for (const HeadClaim& c : claims) {
    if (groups.empty() || groups.back().n != c.tree_size) {
      groups.push_back(SizeGroup{c.tree_size, {}, false});
    }
    SizeGroup& g = groups.back();
    g.has_checkpoint = g.has_checkpoint || !c.from_set;
    const HeadClaim* last = g.variants.empty() ? nullptr : g.variants.back();
    if (last == nullptr || last->root != c.root || last->head_hash != c.head_hash) {
      g.variants.push_back(&c);
    }
  }
  auto conflict = [&](const SizeGroup& g, const HeadClaim* right) {
    std::string sources;
    for (const HeadClaim* v : g.variants) sources += (sources.empty() ? "" : ", ") + v->source;
    add("checkpoint_conflict", log.hex, g.n, "",
        g.variants.back()->from_set ? bundle::kTreeHeadsFile : bundle::kCheckpointsFile,
        "HQ signed " + std::to_string(g.variants.size()) + " different tree heads for this size (" +
            sources + ")" +
            (right ? "; the ops match the " + right->source + "'s" : ""));
  };

  const std::uint64_t first = log.entry.first_seq;
  const std::uint64_t have = first - 1 + log.chosen.size();  // contiguous from the start
  // A complete log's heads come from its Merkle tree (built by the pipeline, or here), which also
  // gives the consistency proofs; a range bundle's from an accumulator continuing its prefix.
  const bool complete = log.entry.prefix_size == 0;
  auto acc = sync::MerkleAccumulator::from_frontier(log.entry.prefix_size, log.entry.frontier);
  if (!acc.is_ok()) {
    add("prefix_mismatch", log.hex, first, "", bundle::kManifestFile, acc.status().message());
    return;
  }
  if (complete && log.tree.size() != log.chosen.size()) {
    std::vector<Hash32> leaves;
    leaves.reserve(log.chosen.size());
    for (const OpEntry* e : log.chosen) leaves.push_back(e->leaf);
    log.tree = sync::MerkleTree(leaves);
  }
  std::size_t next = 0;
  std::vector<const HeadClaim*> matched;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const SizeGroup& g = groups[gi];
    const std::uint64_t n = g.n;
    if (n < log.entry.prefix_size) continue;  // before a range bundle's first op
    if (n > have) {
      for (std::size_t k = gi; k < groups.size(); ++k) {
        if (groups[k].variants.size() > 1) conflict(groups[k], nullptr);
      }
      // A date-range bundle ends where its range ends, so HQ's later heads lie beyond it by
      // design: the exporter leaves such checkpoints out, but a tree head set lists every origin
      // anyway. There, only a checkpoint beyond the log proves a cut tail.
      const bool proves_cut =
          !partial_ || std::any_of(groups.begin() + static_cast<std::ptrdiff_t>(gi), groups.end(),
                                   [](const SizeGroup& x) { return x.has_checkpoint; });
      if (!proves_cut) break;
      // Groups ascend by size, so every later head lies beyond the log too: one cut tail is one
      // finding, named by the newest head that proves it.
      const HeadClaim& newest = *groups.back().variants.back();
      // A gap or a broken file already explains missing ops; otherwise the tail was cut.
      if (!log.gap && !log.file_broken && log.first_finding_seq > n) {
        add("missing_checkpointed_ops", log.hex, have + 1, "", log.entry.file,
            "HQ's " + newest.source + " covers this origin's log up to seq " +
                std::to_string(newest.tree_size) + " but the bundle holds ops only up to seq " +
                std::to_string(have) + ": ops were removed from the end");
        taint_all_ = true;
        taint_all_reason_ = "ops HQ checkpointed are missing: their members are unknown";
      } else if (log.first_finding_seq > n) {
        report_.notes.push_back("checkpoints " + log.hex + "@" + std::to_string(n) + ".." +
                                std::to_string(newest.tree_size) +
                                " not compared: the log is incomplete before them");
      }
      break;
    }
    if (!complete) {
      while (acc->size() < n) acc->append(log.chosen[next++]->leaf);
    }
    const Hash32 root = complete ? log.tree.root(n) : acc->root();
    const Hash32 head = n == log.entry.prefix_size ? log.entry.prefix_prev
                                                   : log.chosen[n - first]->hash;
    const HeadClaim* right = nullptr;
    for (const HeadClaim* v : g.variants) {
      if (v->root == root && v->head_hash == head) right = v;
    }
    if (g.variants.size() > 1) conflict(g, right);
    if (right != nullptr) {
      matched.push_back(right);
      continue;
    }
    const HeadClaim& c = *g.variants.front();
    const char* file = c.from_set ? bundle::kTreeHeadsFile : bundle::kCheckpointsFile;
    if (n == log.entry.prefix_size) {
      log.first_finding_seq = std::min(log.first_finding_seq, n);  // later heads follow from it
      add("prefix_mismatch", log.hex, n, "", bundle::kManifestFile,
          "the manifest's prefix of this origin does not hash to HQ's " + c.source + " at seq " +
              std::to_string(n));
    } else if (log.first_finding_seq <= n) {
      // Derived: an op in the tree already has a finding, which changes the tree.
      report_.notes.push_back(c.source + " " + log.hex + "@" + std::to_string(n) +
                              " does not match, explained by the op findings before it");
    } else if (g.variants.size() == 1) {  // else the conflict names it already
      add("checkpoint_root_mismatch", log.hex, n, "", file,
          c.root != root ? "the ops 1.." + std::to_string(n) + " hash to " + crypto::to_hex(root) +
                               ", not to the root HQ signed in its " + c.source + " " +
                               crypto::to_hex(c.root)
                         : "the head op's hash differs from the one HQ signed in its " + c.source);
    }
  }
  // Consistency between successive matched heads (RFC 9162 §2.1.4).
  if (complete && matched.size() >= 2) {
    for (std::size_t k = 1; k < matched.size(); ++k) {
      const HeadClaim& a = *matched[k - 1];
      const HeadClaim& b = *matched[k];
      auto proof = log.tree.consistency_proof(a.tree_size, b.tree_size);
      if (!sync::merkle_verify_consistency(a.tree_size, b.tree_size, a.root, b.root, proof)) {
        add("checkpoint_inconsistent", log.hex, b.tree_size, "",
            b.from_set ? bundle::kTreeHeadsFile : bundle::kCheckpointsFile,
            "the tree head at " + std::to_string(b.tree_size) + " does not extend the one at " +
                std::to_string(a.tree_size));
      }
    }
  }
  report_.counts["checkpoints_matched"] =
      report_.counts.value("checkpoints_matched", std::uint64_t{0}) + matched.size();
}

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
  const bool check = op.account != sync::Account::kNone && lowers_rights(op);
  if (check && (streamed || !tainted(op.member))) {
    const sync::EscrowCounter& c = op.account == sync::Account::kPoints ? m->points : m->wallet;
    const RightsSample s{&log, op.seq, op.member, op.account, op.origin, c.rights(op.origin),
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
      const bool credit = op.kind == OpKind::kEarn || op.kind == OpKind::kTopup ||
                          (op.kind == OpKind::kReverse && (op.ref_kind == OpKind::kRedeem ||
                                                           op.ref_kind == OpKind::kSpend));
      const auto amount = static_cast<std::int64_t>(op.amount);
      t.delta = op.kind == OpKind::kMove ? 0 : (credit ? amount : -amount);
      const sync::EscrowCounter& c = op.account == sync::Account::kPoints ? m->points : m->wallet;
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
    add("malformed_file", "", 0, "", file, "not an " + std::string(bundle::kBalancesFormat) +
                                               " file with a members array");
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
    Json mine = m ? sync::bundle::balance_json(id, *m) : Json();
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
    report_.notes.push_back(std::to_string(skipped) + " member(s) not compared: an op of theirs "
                            "was rejected (see findings), so their exported state cannot match");
  }
}

void Verifier::finish_checks(bool roster_ok) {
  struct Family {
    const char* name;
    std::vector<const char*> kinds;
  };
  const std::vector<Family> families = {
      {"files", {"file_missing", "file_hash_mismatch", "malformed_file", "manifest_mismatch"}},
      {"roster chain",
       {"malformed_roster", "roster_signature", "roster_network", "roster_successor"}},
      {"op encoding and signatures",
       {"malformed_op", "non_canonical_op", "wrong_origin_file", "unknown_origin",
        "bad_signature"}},
      {"log chains (order, duplicates, gaps, prev links, genesis)",
       {"out_of_order", "duplicate_op", "seq_gap", "prev_mismatch"}},
      {"equivocation", {"equivocation"}},
      {"revocation cut-offs", {"revoked_op"}},
      {"idempotency (request ids, reversals)",
       {"duplicate_request_id", "double_reversal", "bad_reversal"}},
      {"timestamps (HLC per origin)", {"hlc_backwards"}},
      {"checkpoints (signatures, Merkle roots, consistency)",
       {"checkpoint_signature", "malformed_checkpoint", "checkpoint_network",
        "checkpoint_unknown_origin", "checkpoint_conflict", "checkpoint_root_mismatch",
        "missing_checkpointed_ops", "checkpoint_inconsistent", "prefix_mismatch"}},
      {kCompletenessCheck,
       {"tree_heads_missing", "missing_origin", "malformed_tree_heads", "tree_heads_signature",
        "tree_heads_network", "tree_heads_conflict", "tree_heads_successor", "tree_heads_roster"}},
      {"replay (value and rights never below zero)",
       {"negative_rights", "negative_value", "replay_refused"}},
      {"balances", {"balance_mismatch"}},
  };
  for (const Family& f : families) {
    std::uint64_t n = 0;
    for (const Finding& x : report_.findings) {
      for (const char* k : f.kinds) n += x.kind == k ? 1 : 0;
    }
    CheckResult r{f.name, n ? "failed" : "ok", n ? std::to_string(n) + " finding(s)" : ""};
    const std::string name = f.name;
    if (!roster_ok && name != "files" && name != "roster chain") {
      r = {f.name, "skipped", "no roster version verifies under the given root key"};
    } else if (name == "balances" && n == 0) {
      if (partial_) {
        r = {f.name, "skipped", "the bundle covers a date range; balances need every op"};
      } else if (taint_all_) {
        r = {f.name, "skipped", taint_all_reason_};
      }
    } else if (name == kCompletenessCheck && n == 0 && tree_heads_.empty()) {
      r = {f.name, "skipped",
           "no HQ-signed tree head set in the bundle: nothing proves that no origin or log tail "
           "was removed"};
    } else if (name == kCompletenessCheck && n == 0 && partial_) {
      r = {f.name, "ok",
           "date range: checked for the exported origins only (origins with no op in the range "
           "are not expected)"};
    } else if (name == "replay (value and rights never below zero)" && partial_ && n == 0) {
      r = {f.name, "skipped", "the bundle covers a date range; replay needs every op"};
    }
    report_.checks.push_back(std::move(r));
  }
  judge_completeness(roster_ok);
}

// Whether the bundle proves that nothing HQ vouched for was removed, and if not, why (the first
// reason that applies). `verify` exits kExitIncomplete on a clean bundle that does not.
void Verifier::judge_completeness(bool roster_ok) {
  report_.allow_incomplete = opt_.allow_incomplete;
  std::string why;
  const auto check =
      std::find_if(report_.checks.begin(), report_.checks.end(),
                   [](const CheckResult& c) { return c.name == kCompletenessCheck; });
  if (!roster_ok) {
    why = "no roster verifies under the given root key";
  } else if (check != report_.checks.end() && check->status == "failed") {
    why = "the completeness check has findings";
  } else if (tree_heads_.empty()) {
    why =
        "the bundle holds no HQ-signed tree head set, so nothing says which origins and how many "
        "ops must be present";
  } else if (partial_) {
    why =
        "a date-range bundle: an origin left out entirely cannot be told from one with no op in "
        "the range";
  } else if (!uncovered_nodes_.empty()) {
    why = std::to_string(uncovered_nodes_.size()) + " node(s) of roster v" +
          std::to_string(roster_->version) + " (" + uncovered_nodes_.front() +
          (uncovered_nodes_.size() > 1 ? ", ..." : "") + ") have no line in tree head set v" +
          std::to_string(tree_heads_.back().set.version) +
          ": their logs could be missing unseen (run `outpost hq checkpoint` and export again)";
  }
  report_.completeness_proven = why.empty();
  report_.completeness_reason = std::move(why);
}

Result<Report> Verifier::run() {
  OUTPOST_ASSIGN_OR_RETURN(manifest_, internal::read_manifest(dir_));
  report_.bundle = dir_;
  partial_ = manifest_.contains("range") && manifest_["range"].is_object();
  report_.partial = partial_;
  check_files();
  const bool roster_ok = check_rosters();
  if (!roster_ok) {
    for (FileCheck& f : file_checks_) hash_file(f);
    add_file_findings();
    if (report_.findings.empty()) {
      add("roster_signature", "", 0, "", bundle::kRostersFile,
          "the bundle holds no roster: nothing can be authenticated");
    }
    report_.notes.push_back("no roster verifies under the given root key: wrong key, or not this "
                            "chain's bundle; nothing else was checked");
    finish_checks(false);
    return std::move(report_);
  }
  load_logs();
  report_.counts["origins"] = logs_.size();
  check_ops();
  add_file_findings();
  if (!streamed_) {
    for (auto& log : logs_) check_log(*log);
  }
  check_equivocation_evidence();
  check_checkpoints();
  if (!partial_) {
    if (streamed_) {
      finish_streamed_replay();
    } else {
      replay();
    }
    if (!taint_all_) {
      check_balances();
    } else {
      report_.notes.push_back("balances not compared: " + taint_all_reason_);
    }
  } else {
    report_.notes.push_back("partial bundle (date range): replay and balances are not checked; "
                            "each origin's chain is checked from its first exported op");
  }
  finish_checks(true);
  return std::move(report_);
}

}  // namespace

std::string Report::result() const {
  if (!clean()) return "findings";
  if (!completeness_proven) return allow_incomplete ? "incomplete_allowed" : "incomplete";
  return "clean";
}

int Report::exit_code() const {
  const std::string r = result();
  return r == "findings" ? kExitFindings : r == "incomplete" ? kExitIncomplete : kExitClean;
}

Result<Report> verify_bundle(const std::string& dir, const VerifyOptions& options) {
  Verifier v(dir, options);
  return v.run();
}

Result<crypto::PublicKey> parse_root_key(const std::string& hex_or_path) {
  std::string text = hex_or_path;
  const bool looks_hex = text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") ==
                                                  std::string::npos;
  if (!looks_hex) {
    auto data = read_whole_file(hex_or_path, limits::kKeyFileBytesMax);
    if (!data.is_ok()) {
      return Status::invalid("--root must be 64 hex digits or a file holding them: " +
                             data.status().message());
    }
    text.assign(data->begin(), data->end());
    const auto b = text.find_first_not_of(" \t\r\n");
    const auto e = text.find_last_not_of(" \t\r\n");
    text = b == std::string::npos ? "" : text.substr(b, e - b + 1);
  }
  auto key = internal::hex_array<32>(text, "root key");
  if (!key.is_ok()) return Status::invalid("--root: the root public key must be 64 hex digits");
  return *key;
}

}  // namespace outpost::audit
