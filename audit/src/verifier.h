// The verifier's state and stages, shared by the files that implement them (internal to audit/).
// verify.cc runs the stages in order (see the overview there); each stage lives in its own file:
//   verify_read.cc     1-2: the manifest's file list and digests, the roster chain, the logs
//   verify_ops.cc      3:   decoding and signatures on worker threads, and the pipeline's fast path
//   verify_logs.cc     4:   each origin's log by the rule book's log rule, equivocation evidence
//   verify_heads.cc    5:   checkpoints and tree head sets (completeness)
//   verify_replay.cc   6-7: replay through sync::Replica (the rule book's apply_effects), balances
// One Verifier per bundle; it runs worker threads only inside check_ops() and joins them there.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bundle_io.h"
#include "outpost/audit/verify.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/replica.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rule_book.h"

namespace outpost::audit::internal {

using sync::Hash32;
using sync::MemberId;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

// Ops per batch handed to a worker; also the chunk size of a log's entries.
inline constexpr std::size_t kBatchOps = 512;
// The check family that says whether every origin and every log length HQ vouched for is there.
inline constexpr const char* kCompletenessCheck =
    "completeness (HQ tree head set: origins, log lengths)";
// Progress callbacks at most this often (in ops).
inline constexpr std::uint64_t kProgressEveryOps = 16'384;
// Bytes hashed per read when checking file digests.
inline constexpr std::size_t kHashChunkBytes = 1 << 20;

enum class OpStatus : std::uint8_t {
  kOk,
  kMalformed,      // decode_op refused the bytes
  kNonCanonical,   // decodes, but re-encoding gives other bytes
  kWrongOrigin,    // the op names another origin than its file
  kUnknownOrigin,  // no roster lists the op's origin
  kBadSignature,   // the origin's key does not verify the signature
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
  bool file_broken = false;  // missing or cut short: the log is known incomplete
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

// One entry of the manifest's file list and how it checks out. A worker computes the digest (from
// the verifier's own copy of the file when it reads it anyway), so this thread does not read and
// hash the bundle twice; the findings are added in manifest order once the workers are done.
struct FileCheck {
  std::string rel;
  std::uint64_t listed_bytes = 0;
  std::string listed_sha;
  std::optional<Finding> bad_entry;                 // manifest_mismatch: nothing to hash
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

// The signed heads of one origin for one log size (Verifier::check_origin_checkpoints).
struct HeadGroup {
  std::uint64_t n = 0;
  std::vector<const HeadClaim*> variants;  // distinct (root, head hash)
  bool has_checkpoint = false;
};

// The serial walk of one origin's log in seq order (Verifier::check_log).
struct LogWalk {
  std::uint64_t expect = 1;       // the seq that should come next
  const OpEntry* prev = nullptr;  // chosen op of seq expect - 1, when contiguous
  bool open = true;               // replay still takes this origin's ops
  std::unordered_map<std::string_view, std::uint64_t> request_ids;  // views into the entries
  std::set<std::uint64_t> reversed;
};

// What the bundle says of a log's origin, for the log rule: its key and revocation cut-off.
sync::OriginTrust trust_of(const OriginLog& log);
// The log rule (sync::judge_op) for an entry that stage 3 decoded, against `head`; the signature
// is what the workers found (verify_logs.cc).
sync::LogRuling judge_entry(const OriginLog& log, const sync::LogHead& head, const OpEntry& e);

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
  void report_entry_statuses(OriginLog& log);
  void check_file_order(OriginLog& log);
  void check_seq(OriginLog& log, std::span<const OpEntry* const> group,
                 std::span<const OpEntry* const> next_group, LogWalk& walk);
  const OpEntry* check_same_seq(OriginLog& log, std::span<const OpEntry* const> group,
                                std::span<const OpEntry* const> next_group);
  bool check_chosen(OriginLog& log, const OpEntry& e, LogWalk& walk);
  std::optional<std::pair<std::string, std::string>> reversal_finding(
      const OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed) const;
  void check_reversal(OriginLog& log, const OpEntry& e, std::set<std::uint64_t>& reversed,
                      bool& reject);
  void check_equivocation_evidence();
  void check_evidence(const Op& op, const Hash32& hash, sync::ByteView body,
                      const crypto::Signature& sig);
  void check_checkpoints();
  void read_checkpoints();
  void read_tree_heads();
  void check_tree_head_sets();
  void check_missing_origin(const NodeId& origin, const std::vector<HeadClaim>& claims);
  void check_origin_checkpoints(OriginLog& log, std::vector<HeadClaim>& claims);
  void report_conflict(const OriginLog& log, const HeadGroup& g, const HeadClaim* right);
  void check_heads_beyond(OriginLog& log, const std::vector<HeadGroup>& groups, std::size_t gi,
                          std::uint64_t have);
  void report_unmatched_head(OriginLog& log, const HeadGroup& g, const Hash32& root);
  void check_consistency(const OriginLog& log, const std::vector<const HeadClaim*>& matched);
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

// The replay key of an op read straight from its signed bytes (verify_ops.cc).
std::optional<ReplayKey> raw_replay_key(sync::ByteView b);

}  // namespace outpost::audit::internal
