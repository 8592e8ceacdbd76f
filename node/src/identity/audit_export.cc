// HQ checkpoints and the audit bundle exporter. The bundle layout is docs/audit-bundle.md; the
// reader is audit/ (`outpost-audit`). Everything is read inside one read transaction, a snapshot
// that the daemon's writers do not disturb (WAL), so a bundle is consistent while the node runs.
#include "outpost/node/audit_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <vector>

#include "outpost/audit/bundle_format.h"
#include "outpost/base/files.h"
#include "outpost/base/limits.h"
#include "outpost/node/identity.h"
#include "outpost/node/schema.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"

namespace outpost::node {

namespace fs = std::filesystem;
namespace bundle = audit::bundle;
using sync::Bytes;
using sync::NodeId;

namespace {

// Ops read from the store per query while walking a log.
constexpr std::size_t kOpsPerRead = 4096;
// Buffered bytes per bundle file before a write(2).
constexpr std::size_t kFileBufferBytes = 1 << 20;
constexpr std::uint64_t kDayMs = 86'400'000ULL;

std::string join(const std::string& dir, const std::string& file) {
  return (fs::path(dir) / file).string();
}

Result<std::unique_ptr<storage::Store>> open_store(const std::string& dir) { return open_data_dir_store(dir); }

using storage::ReadSnapshot;

// A new bundle file: buffered writes, SHA-256 and size as it goes, fsync'd on close().
class FileSink {
 public:
  static Result<FileSink> create(const std::string& dir, const std::string& rel) {
    const std::string path = join(dir, rel);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Status::io_error("cannot create " + path + ": " + std::strerror(errno));
    return FileSink(fd, path, rel);
  }
  FileSink(FileSink&& o) noexcept
      : fd_(o.fd_), path_(std::move(o.path_)), rel_(std::move(o.rel_)),
        buf_(std::move(o.buf_)), sha_(o.sha_), bytes_(o.bytes_) {
    o.fd_ = -1;
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  FileSink& operator=(FileSink&&) = delete;
  ~FileSink() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status write(sync::ByteView data) {
    sha_.update(data);
    bytes_ += data.size();
    buf_.insert(buf_.end(), data.begin(), data.end());
    return buf_.size() >= kFileBufferBytes ? flush() : Status::ok();
  }
  Status write(const std::string& text) { return write(crypto::view(text)); }

  // Flushes, fsyncs and closes; returns the manifest entry of the file.
  Result<Json> close() {
    OUTPOST_RETURN_IF_ERROR(flush());
    if (::fsync(fd_) != 0) return Status::io_error("fsync " + path_ + ": " + std::strerror(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Status::io_error("close " + path_ + ": " + std::strerror(errno));
    return Json{{"path", rel_}, {"bytes", bytes_}, {"sha256", crypto::to_hex(sha_.finish())}};
  }

 private:
  FileSink(int fd, std::string path, std::string rel)
      : fd_(fd), path_(std::move(path)), rel_(std::move(rel)) {
    buf_.reserve(kFileBufferBytes + limits::kOpSignedBytesMax + 128);
  }
  Status flush() {
    std::size_t done = 0;
    while (done < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::io_error("write " + path_ + ": " + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    buf_.clear();
    return Status::ok();
  }

  int fd_;
  std::string path_;
  std::string rel_;
  std::vector<std::uint8_t> buf_;
  crypto::Sha256 sha_;
  std::uint64_t bytes_ = 0;
};

Status write_frame(FileSink& sink, sync::ByteView body, const crypto::Signature& sig) {
  sync::ByteWriter w;
  sync::write_frame(w, body, sig);
  return sink.write(w.bytes());
}


std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string utc_iso(std::uint64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(ms % 1000));
  return buf;
}

// Calls `fn` with every op of `origin` with from_seq <= seq <= to_seq, ascending. kCorruption if
// the stored log has a gap there.
template <typename Fn>
Status for_each_op(storage::Store& store, const NodeId& origin, std::uint64_t from_seq,
                   std::uint64_t to_seq, Fn&& fn) {
  std::uint64_t expect = from_seq;
  while (expect <= to_seq) {
    OUTPOST_ASSIGN_OR_RETURN(auto batch, store.ops_of_origin(origin, expect, kOpsPerRead));
    if (batch.empty()) break;
    for (const auto& sop : batch) {
      if (sop.op.seq > to_seq) return Status::ok();
      if (sop.op.seq != expect) {
        return Status::corruption("stored log of " + sync::id_hex(origin) + " has a gap at seq " +
                                  std::to_string(expect));
      }
      OUTPOST_RETURN_IF_ERROR(fn(sop));
      ++expect;
    }
  }
  if (expect != to_seq + 1) {
    return Status::corruption("stored log of " + sync::id_hex(origin) + " ends at seq " +
                              std::to_string(expect - 1) + ", before " + std::to_string(to_seq));
  }
  return Status::ok();
}

using StoredCheckpoint = storage::StoredSigned;

Result<std::vector<StoredCheckpoint>> load_checkpoints(storage::Store& store) { return store.checkpoints(); }

// HQ's root key, checked against the anchors the data dir pins.
Result<crypto::SigningKey> read_root_key(const std::string& hq_dir, const TrustAnchors& anchors) {
  auto seed = crypto::read_key_file(join(hq_dir, kRootKeyFile), kRootKeyKind);
  if (!seed.is_ok()) {
    return seed.status().with_context("the HQ root key (" + join(hq_dir, kRootKeyFile) +
                                      ") is needed to sign checkpoints");
  }
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey root, crypto::SigningKey::from_seed(seed->view()));
  if (!crypto::ct_equal(root.public_key(), anchors.root_key)) {
    return Status::permission(join(hq_dir, kRootKeyFile) + " is not the root key this network pins");
  }
  return root;
}

// A head HQ signed before (a checkpoint, or an origin's line in a tree head set) that the log
// must still hash to.
struct SignedHead {
  std::uint64_t tree_size = 0;
  sync::Hash32 root{};
  sync::Hash32 head_hash{};
  std::string what;  // "checkpoint", "tree head set v3"
};

// Computes the checkpoint of `origin` at `head_seq`, checking the log against every head HQ
// signed for it before (its newest checkpoint, its line in the newest tree head set).
Result<sync::Checkpoint> compute_checkpoint(storage::Store& store, const TrustAnchors& anchors,
                                            const NodeId& origin, std::uint64_t head_seq,
                                            const std::vector<SignedHead>& signed_before) {
  for (const SignedHead& h : signed_before) {
    if (h.tree_size > head_seq) {
      return Status::corruption("the " + h.what + " of " + sync::id_hex(origin) + " at seq " +
                                std::to_string(h.tree_size) + " is beyond the log's head " +
                                std::to_string(head_seq));
    }
  }
  sync::MerkleAccumulator acc;
  sync::Hash32 last{};
  OUTPOST_RETURN_IF_ERROR(for_each_op(store, origin, 1, head_seq, [&](const sync::SignedOp& s) {
    acc.append(sync::merkle_op_leaf_hash(s.signed_bytes, s.sig));
    last = s.hash;
    // Invariant: a log only grows, so it still hashes to every head HQ signed before.
    for (const SignedHead& h : signed_before) {
      if (acc.size() == h.tree_size && (acc.root() != h.root || last != h.head_hash)) {
        return Status::corruption("the log of " + sync::id_hex(origin) +
                                  " no longer matches the " + h.what + " HQ signed at seq " +
                                  std::to_string(h.tree_size));
      }
    }
    return Status::ok();
  }));
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store.head(origin));
  if (head.hash != last) {
    return Status::corruption("head of " + sync::id_hex(origin) + " does not match its last op");
  }
  sync::Checkpoint cp;
  cp.network_id = anchors.network_id;
  cp.origin = origin;
  cp.tree_size = head_seq;
  cp.root = acc.root();
  cp.head_hash = last;
  return cp;
}

// The newest tree head set HQ stored, checked against the root key (the database is HQ's own,
// but a set that no longer verifies must not be extended). nullopt when there is none.
Result<std::optional<sync::SignedTreeHeadSet>> load_newest_tree_heads(storage::Store& store,
                                                                      const TrustAnchors& anchors) {
  OUTPOST_ASSIGN_OR_RETURN(auto row, store.latest_tree_head_set());
  if (!row) return std::optional<sync::SignedTreeHeadSet>();
  auto s = sync::verify_tree_head_set(row->body, crypto::ByteView(row->sig), anchors.root_key);
  if (!s.is_ok()) {
    return s.status().with_context("stored tree head set v" + std::to_string(row->version) +
                                   " is damaged");
  }
  if (s->set.version != row->version || s->set.network_id != anchors.network_id) {
    return Status::corruption("stored tree head set v" + std::to_string(row->version) +
                              " does not match its row");
  }
  return std::optional<sync::SignedTreeHeadSet>(std::move(s).value());
}

// Why `outpost-audit verify` will not be able to prove the bundle complete (and will exit 3
// without --allow-incomplete), or "" when it will: the same rules as the verifier's
// (docs/audit-bundle.md, "Completeness verdict"), judged on what this node holds.
Result<std::string> completeness_warning(storage::Store& store, const TrustAnchors& anchors,
                                         const sync::Roster* roster, bool partial) {
  OUTPOST_ASSIGN_OR_RETURN(auto newest, load_newest_tree_heads(store, anchors));
  if (!newest) {
    return std::string(
        "this node holds no HQ tree head set (HQ signs one with `outpost hq "
        "checkpoint`; a store receives it over sync)");
  }
  if (partial) return std::string("a date-range bundle never proves that no origin was removed");
  std::string missing;
  if (roster == nullptr) return missing;
  for (const auto& sc : roster->certificates) {
    if (newest->set.find(sc.cert.node_id) == nullptr) {
      missing += (missing.empty() ? "" : ", ") + sc.cert.name;
    }
  }
  if (missing.empty()) return missing;
  return "tree head set v" + std::to_string(newest->set.version) + " does not cover " + missing +
         ", enrolled after it (run `outpost hq checkpoint` at HQ, then export again)";
}

Status prepare_out_dir(const std::string& out) {
  std::error_code ec;
  if (out.empty()) return Status::invalid("export-audit needs --out DIR");
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) return Status::invalid(out + " exists and is not a directory");
    if (!fs::is_empty(out, ec)) {
      return Status::invalid(out + " is not empty; refusing to mix two bundles (use a new dir)");
    }
  }
  fs::create_directories(join(out, bundle::kOpsDir), ec);
  if (ec) return Status::io_error("cannot create " + out + ": " + ec.message());
  return Status::ok();
}

// The heads HQ signed before for `origin` (its newest checkpoint, its head in the newest tree
// head set), which a new checkpoint must extend.
Result<std::vector<SignedHead>> signed_heads_before(
    const NodeId& origin, const StoredCheckpoint* previous,
    const std::optional<sync::SignedTreeHeadSet>& previous_set) {
  std::vector<SignedHead> before;
  if (previous != nullptr) {
    auto cp = sync::decode_checkpoint(previous->body);
    if (!cp.is_ok()) return cp.status().with_context("stored checkpoint is damaged");
    before.push_back(SignedHead{cp->tree_size, cp->root, cp->head_hash, "checkpoint"});
  }
  if (previous_set) {
    const sync::TreeHead* h = previous_set->set.find(origin);
    if (h != nullptr && h->tree_size > 0) {
      const std::string what = "tree head set v" + std::to_string(previous_set->set.version);
      before.push_back(SignedHead{h->tree_size, h->root, h->head_hash, what});
    }
  }
  return before;
}

// The chain-wide tree head set over `heads`: a new version, signed, whenever a head or the roster
// moved since `previous_set` (returned, and written to `set`); otherwise `set` is the previous one
// and nothing is returned.
Result<std::optional<sync::SignedTreeHeadSet>> next_tree_head_set(
    const TrustAnchors& anchors, std::uint64_t roster_version,
    const std::map<NodeId, sync::TreeHead>& heads,
    const std::optional<sync::SignedTreeHeadSet>& previous_set, std::uint64_t now_ms,
    const crypto::SigningKey& root, sync::TreeHeadSet& set) {
  set.network_id = anchors.network_id;
  set.roster_version = roster_version;
  for (const auto& [origin, h] : heads) set.heads.push_back(h);
  if (previous_set && previous_set->set.heads == set.heads &&
      previous_set->set.roster_version == set.roster_version) {
    set = previous_set->set;
    return std::optional<sync::SignedTreeHeadSet>();
  }
  set.version = previous_set ? previous_set->set.version + 1 : 1;
  set.issued = sync::Hlc{now_ms, 0};
  if (previous_set) {
    Status st = sync::check_tree_head_successor(previous_set->set, set);
    if (!st.is_ok()) {
      return Status::corruption("HQ's log no longer extends its newest tree head set: " +
                                st.message());
    }
  }
  return std::optional<sync::SignedTreeHeadSet>(sync::sign_tree_head_set(set, root));
}

// The seqs of `origin` that a date range selects: [first, last], or nullopt when none.
struct SeqRange {
  std::uint64_t first = 1;
  std::uint64_t last = 0;
};
Result<std::optional<SeqRange>> select_range(storage::Store& store, const NodeId& origin,
                                             std::uint64_t head, std::uint64_t from_ms,
                                             std::uint64_t to_ms) {
  std::optional<std::uint64_t> first;
  std::uint64_t last = 0;
  OUTPOST_RETURN_IF_ERROR(for_each_op(store, origin, 1, head, [&](const sync::SignedOp& s) {
    const std::uint64_t t = s.op.hlc.wall_ms;
    if (!first && t >= from_ms) first = s.op.seq;
    if (t < to_ms && t >= from_ms) last = s.op.seq;
    return Status::ok();
  }));
  if (!first || last < *first) return std::optional<SeqRange>();
  return std::optional<SeqRange>(SeqRange{*first, last});
}

}  // namespace

Result<std::uint64_t> parse_utc_date_ms(const std::string& d) {
  auto bad = [&] { return Status::invalid("date must be YYYY-MM-DD (UTC), got '" + d + "'"); };
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return bad();
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (d[static_cast<std::size_t>(i)] < '0' || d[static_cast<std::size_t>(i)] > '9') {
      return bad();
    }
  }
  const int y = std::stoi(d.substr(0, 4));
  const unsigned m = static_cast<unsigned>(std::stoi(d.substr(5, 2)));
  const unsigned day = static_cast<unsigned>(std::stoi(d.substr(8, 2)));
  static const unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || m < 1 || m > 12 || day < 1 || day > kDays[m - 1]) return bad();
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && day == 29 && !leap) return bad();
  return static_cast<std::uint64_t>(days_from_civil(y, m, day)) * kDayMs;
}

Result<Json> hq_checkpoint(const std::string& hq_dir, sync::Clock& clock) {
  OUTPOST_ASSIGN_OR_RETURN(auto store, open_store(hq_dir));
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store));
  OUTPOST_ASSIGN_OR_RETURN(auto role, store->get_meta("role"));
  if (!anchors || role.value_or("") != "hq") {
    return Status::invalid(hq_dir + " is not an HQ data dir (checkpoints are signed at HQ)");
  }
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey root, read_root_key(hq_dir, *anchors));

  std::vector<sync::SignedCheckpoint> fresh;
  std::optional<sync::SignedTreeHeadSet> fresh_set;
  sync::TreeHeadSet set;
  Json list = Json::array();
  {
    OUTPOST_ASSIGN_OR_RETURN(ReadSnapshot snap, ReadSnapshot::begin(store->db()));
    OUTPOST_ASSIGN_OR_RETURN(auto vv, store->version_vector());
    OUTPOST_ASSIGN_OR_RETURN(auto stored, load_checkpoints(*store));
    OUTPOST_ASSIGN_OR_RETURN(auto roster, load_roster(*store, *anchors));
    if (!roster) return Status::corruption(hq_dir + " holds no roster");
    OUTPOST_ASSIGN_OR_RETURN(auto previous_set, load_newest_tree_heads(*store, *anchors));
    std::map<NodeId, const StoredCheckpoint*> newest;
    for (const auto& c : stored) newest[c.origin] = &c;  // rows ascend by (origin, seq)
    // Every node of the roster has a head, the ones with no op at HQ an empty one.
    std::map<NodeId, sync::TreeHead> heads;
    for (const auto& sc : roster->certificates) {
      heads[sc.cert.node_id] = sync::TreeHead{sc.cert.node_id, 0, sync::merkle_empty_root(), {}};
    }
    const std::uint64_t now_ms = clock.now_ms();
    for (const auto& [origin, head_seq] : vv) {
      if (!heads.count(origin)) {
        return Status::corruption("HQ holds ops of " + sync::id_hex(origin) +
                                  ", which its roster v" + std::to_string(roster->version) +
                                  " does not list");
      }
      if (head_seq == 0) continue;
      auto it = newest.find(origin);
      const StoredCheckpoint* previous = it == newest.end() ? nullptr : it->second;
      if (previous != nullptr && previous->seq == head_seq) {
        auto cp = sync::decode_checkpoint(previous->body);
        if (!cp.is_ok()) return cp.status().with_context("stored checkpoint is damaged");
        heads[origin] = sync::TreeHead{origin, head_seq, cp->root, cp->head_hash};
        list.push_back({{"origin", sync::id_hex(origin)}, {"seq", head_seq}, {"new", false}});
        continue;
      }
      OUTPOST_ASSIGN_OR_RETURN(std::vector<SignedHead> before,
                               signed_heads_before(origin, previous, previous_set));
      OUTPOST_ASSIGN_OR_RETURN(sync::Checkpoint cp,
                               compute_checkpoint(*store, *anchors, origin, head_seq, before));
      cp.issued = sync::Hlc{now_ms, 0};
      fresh.push_back(sync::sign_checkpoint(cp, root));
      heads[origin] = sync::TreeHead{origin, head_seq, cp.root, cp.head_hash};
      list.push_back({{"origin", sync::id_hex(origin)},
                      {"seq", head_seq},
                      {"root", crypto::to_hex(cp.root)},
                      {"new", true}});
    }
    OUTPOST_ASSIGN_OR_RETURN(fresh_set, next_tree_head_set(*anchors, roster->version, heads,
                                                           previous_set, now_ms, root, set));
  }
  std::vector<storage::StoredSigned> rows;
  rows.reserve(fresh.size());
  for (const auto& s : fresh) rows.push_back({s.cp.origin, s.cp.tree_size, s.body, s.sig});
  OUTPOST_RETURN_IF_ERROR(store->put_checkpoints(rows));
  if (fresh_set) {
    OUTPOST_RETURN_IF_ERROR(
        store->put_tree_head_set(fresh_set->set.version, fresh_set->body, fresh_set->sig)
            .with_context("another `outpost hq checkpoint` ran at the same time; run it again"));
  }
  return Json{{"signed", fresh.size()},
              {"checkpoints", list},
              {"tree_heads",
               {{"version", set.version},
                {"new", fresh_set.has_value()},
                {"roster_version", set.roster_version},
                {"origins", set.heads.size()},
                {"ops", set.total_ops()}}}};
}

Result<sync::SignedTreeHeadSet> accept_tree_head_set(storage::Store& store, const TrustAnchors& anchors,
                                                      std::uint64_t roster_version_held, sync::ByteView body,
                                                      sync::ByteView sig) {
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedTreeHeadSet offered,
                           sync::verify_tree_head_set(body, sig, anchors.root_key));
  if (offered.set.network_id != anchors.network_id) {
    return Status::permission("tree head set belongs to network " + crypto::to_hex(offered.set.network_id));
  }
  OUTPOST_ASSIGN_OR_RETURN(auto held, load_newest_tree_heads(store, anchors));
  if (held && offered.set.version <= held->set.version) {
    return Status::refused("tree head set v" + std::to_string(offered.set.version) + " is not newer than v" +
                           std::to_string(held->set.version));
  }
  if (offered.set.roster_version > roster_version_held) {
    // Its export would name a roster this node cannot show (tree_heads_roster); the roster comes
    // first in every session, so a later offer succeeds.
    return Status::refused("tree head set v" + std::to_string(offered.set.version) + " names roster v" +
                           std::to_string(offered.set.roster_version) + ", newer than the held v" +
                           std::to_string(roster_version_held));
  }
  if (held) {
    Status st = sync::check_tree_head_successor(held->set, offered.set);
    if (!st.is_ok()) {
      return Status::corruption("HQ's tree head set v" + std::to_string(offered.set.version) +
                                " does not extend the held v" + std::to_string(held->set.version) + ": " +
                                st.message());
    }
  }
  OUTPOST_RETURN_IF_ERROR(store.put_tree_head_set(offered.set.version, offered.body, offered.sig));
  return offered;
}

namespace {

// What an export has written so far: the manifest's file entries, counts and origins (in the
// order they are written), and the seqs of each origin whose ops are in the bundle.
struct ExportState {
  Json files = Json::array();
  Json counts;
  Json origins = Json::array();
  std::map<NodeId, SeqRange> exported;
};

// Rosters: every stored version, ascending.
Status export_rosters(storage::Store& store, const std::string& out, ExportState& state) {
  OUTPOST_ASSIGN_OR_RETURN(FileSink rosters, FileSink::create(out, bundle::kRostersFile));
  OUTPOST_ASSIGN_OR_RETURN(auto versions, store.roster_versions());
  for (std::uint64_t v : versions) {
    OUTPOST_ASSIGN_OR_RETURN(auto r, store.get_roster(v));
    if (!r) return Status::corruption("roster v" + std::to_string(v) + " vanished");
    OUTPOST_RETURN_IF_ERROR(write_frame(rosters, r->body, r->sig));
  }
  OUTPOST_ASSIGN_OR_RETURN(Json rosters_entry, rosters.close());
  state.files.push_back(rosters_entry);
  state.counts["rosters"] = versions.size();
  return Status::ok();
}

// The ops of every origin held, each origin in its own file plus the readable ops.jsonl; in a
// range bundle (`partial`) only the seqs whose HLC falls in [from_ms, to_ms), with the Merkle
// frontier of the ops before them, so that the verifier can still check the log's tree heads.
Status export_ops(storage::Store& store, const std::string& out, const sync::Roster* roster,
                  bool partial, std::uint64_t from_ms, std::uint64_t to_ms,
                  const ExportProgress& progress, ExportState& state) {
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store.version_vector());
  std::uint64_t total = 0;
  for (const auto& [origin, head] : vv) total += head;
  std::uint64_t done = 0;
  OUTPOST_ASSIGN_OR_RETURN(FileSink jsonl, FileSink::create(out, bundle::kOpsJsonFile));
  for (const auto& [origin, head] : vv) {
    SeqRange range{1, head};
    if (partial) {
      OUTPOST_ASSIGN_OR_RETURN(auto sel, select_range(store, origin, head, from_ms, to_ms));
      if (!sel) continue;
      range = *sel;
    }
    if (range.last < range.first) continue;
    const std::string rel =
        std::string(bundle::kOpsDir) + "/" + sync::id_hex(origin) + bundle::kOpsSuffix;
    OUTPOST_ASSIGN_OR_RETURN(FileSink ops, FileSink::create(out, rel));
    sync::MerkleAccumulator prefix;
    sync::Hash32 prefix_last{};
    OUTPOST_RETURN_IF_ERROR(
        for_each_op(store, origin, 1, range.last, [&](const sync::SignedOp& s) -> Status {
          if (s.op.seq < range.first) {
            prefix.append(sync::merkle_op_leaf_hash(s.signed_bytes, s.sig));
            prefix_last = s.hash;
            return Status::ok();
          }
          OUTPOST_RETURN_IF_ERROR(write_frame(ops, s.signed_bytes, s.sig));
          Json j = schema::op_json(s);
          j["prev"] = crypto::to_hex(s.op.prev);
          OUTPOST_RETURN_IF_ERROR(jsonl.write(j.dump() + "\n"));
          if (++done % kOpsPerRead == 0 && progress) progress(done, total);
          return Status::ok();
        }));
    OUTPOST_ASSIGN_OR_RETURN(Json entry, ops.close());
    state.files.push_back(entry);
    Json frontier = Json::array();
    for (const auto& h : prefix.frontier()) frontier.push_back(crypto::to_hex(h));
    const sync::SignedCertificate* cert = roster ? roster->find(origin) : nullptr;
    state.origins.push_back({{"origin", sync::id_hex(origin)},
                             {"name", cert ? Json(cert->cert.name) : Json()},
                             {"file", rel},
                             {"first_seq", range.first},
                             {"last_seq", range.last},
                             {"ops", range.last - range.first + 1},
                             {"prefix",
                              {{"size", prefix.size()},
                               {"frontier", frontier},
                               {"prev_hash", crypto::to_hex(prefix_last)}}}});
    state.exported[origin] = range;
  }
  if (progress) progress(done, total);
  OUTPOST_ASSIGN_OR_RETURN(Json jsonl_entry, jsonl.close());
  state.files.push_back(jsonl_entry);
  state.counts["ops"] = done;
  state.counts["origins"] = state.exported.size();
  return Status::ok();
}

// Checkpoints whose tree the bundle can recompute (all of them in a complete bundle).
Status export_checkpoints(storage::Store& store, const std::string& out, ExportState& state) {
  OUTPOST_ASSIGN_OR_RETURN(FileSink cps, FileSink::create(out, bundle::kCheckpointsFile));
  OUTPOST_ASSIGN_OR_RETURN(auto stored_cps, load_checkpoints(store));
  std::uint64_t ncp = 0;
  for (const auto& c : stored_cps) {
    auto it = state.exported.find(c.origin);
    if (it == state.exported.end() || c.seq + 1 < it->second.first || c.seq > it->second.last)
      continue;
    OUTPOST_RETURN_IF_ERROR(write_frame(cps, c.body, c.sig));
    ++ncp;
  }
  OUTPOST_ASSIGN_OR_RETURN(Json cps_entry, cps.close());
  state.files.push_back(cps_entry);
  state.counts["checkpoints"] = ncp;
  return Status::ok();
}

// Tree head sets: every version HQ signed (a range bundle too: the verifier checks the heads
// that fall inside the range).
Status export_tree_heads(storage::Store& store, const std::string& out, ExportState& state) {
  OUTPOST_ASSIGN_OR_RETURN(FileSink ths, FileSink::create(out, bundle::kTreeHeadsFile));
  OUTPOST_ASSIGN_OR_RETURN(auto th_versions, store.tree_head_set_versions());
  for (std::uint64_t v : th_versions) {
    OUTPOST_ASSIGN_OR_RETURN(auto t, store.get_tree_head_set(v));
    if (!t) return Status::corruption("tree head set v" + std::to_string(v) + " vanished");
    OUTPOST_RETURN_IF_ERROR(write_frame(ths, t->body, t->sig));
  }
  OUTPOST_ASSIGN_OR_RETURN(Json ths_entry, ths.close());
  state.files.push_back(ths_entry);
  state.counts["tree_heads"] = th_versions.size();
  return Status::ok();
}

// Equivocation evidence: second ops HQ received for a held (origin, seq).
Status export_equivocations(storage::Store& store, const std::string& out, ExportState& state) {
  OUTPOST_ASSIGN_OR_RETURN(FileSink eq, FileSink::create(out, bundle::kEquivocationsFile));
  OUTPOST_ASSIGN_OR_RETURN(auto evidence, store.equivocations());
  std::uint64_t neq = 0;
  for (const auto& e : evidence) {
    auto it = state.exported.find(e.origin);
    if (it == state.exported.end() || e.seq < it->second.first || e.seq > it->second.last) continue;
    OUTPOST_RETURN_IF_ERROR(write_frame(eq, e.body, e.sig));
    ++neq;
  }
  OUTPOST_ASSIGN_OR_RETURN(Json eq_entry, eq.close());
  state.files.push_back(eq_entry);
  state.counts["equivocations"] = neq;
  return Status::ok();
}

// Balances as this node holds them (complete bundles only: a range cannot be replayed).
Status export_balances(storage::Store& store, const std::string& out, const std::string& node_id,
                       ExportState& state) {
  OUTPOST_ASSIGN_OR_RETURN(auto members, store.load_all_members());
  OUTPOST_ASSIGN_OR_RETURN(FileSink bal, FileSink::create(out, bundle::kBalancesFile));
  OUTPOST_RETURN_IF_ERROR(bal.write("{\"format\":\"" + std::string(bundle::kBalancesFormat) +
                                    "\",\"version\":" + std::to_string(bundle::kVersion) +
                                    ",\"node_id\":\"" + node_id + "\",\"members\":[\n"));
  bool first = true;
  for (const auto& [id, m] : members) {
    OUTPOST_RETURN_IF_ERROR(
        bal.write((first ? "" : ",\n") + audit::bundle::balance_json(id, m).dump()));
    first = false;
  }
  OUTPOST_RETURN_IF_ERROR(bal.write("\n]}\n"));
  OUTPOST_ASSIGN_OR_RETURN(Json bal_entry, bal.close());
  state.files.push_back(bal_entry);
  state.counts["members"] = members.size();
  return Status::ok();
}

}  // namespace

Result<Json> export_audit(const std::string& dir, const ExportOptions& options,
                          sync::Clock& clock) {
  std::optional<std::uint64_t> from_ms, to_ms;
  if (options.from) {
    OUTPOST_ASSIGN_OR_RETURN(from_ms, parse_utc_date_ms(*options.from));
  }
  if (options.to) {
    OUTPOST_ASSIGN_OR_RETURN(std::uint64_t day, parse_utc_date_ms(*options.to));
    to_ms = day + kDayMs;  // the whole day is included
  }
  if (from_ms && to_ms && *from_ms >= *to_ms) return Status::invalid("--from is after --to");
  const bool partial = from_ms.has_value() || to_ms.has_value();

  OUTPOST_ASSIGN_OR_RETURN(auto store, open_store(dir));
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store));
  if (!anchors) {
    return Status::invalid(
        "this node is not enrolled in a chain: without HQ-signed rosters its "
        "ops cannot be verified from a root key (docs/security.md)");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto roster, load_roster(*store, *anchors));
  OUTPOST_ASSIGN_OR_RETURN(auto node_id, store->get_meta("node_id"));
  OUTPOST_ASSIGN_OR_RETURN(auto node_name, store->get_meta("node_name"));
  OUTPOST_ASSIGN_OR_RETURN(auto role, store->get_meta("role"));
  OUTPOST_RETURN_IF_ERROR(prepare_out_dir(options.out_dir));
  const std::string& out = options.out_dir;

  OUTPOST_ASSIGN_OR_RETURN(ReadSnapshot snap, ReadSnapshot::begin(store->db()));
  ExportState state;
  OUTPOST_RETURN_IF_ERROR(export_rosters(*store, out, state));
  OUTPOST_RETURN_IF_ERROR(export_ops(*store, out, roster.get(), partial, from_ms.value_or(0),
                                     to_ms.value_or(UINT64_MAX), options.progress, state));
  OUTPOST_RETURN_IF_ERROR(export_checkpoints(*store, out, state));
  OUTPOST_RETURN_IF_ERROR(export_tree_heads(*store, out, state));
  OUTPOST_RETURN_IF_ERROR(export_equivocations(*store, out, state));
  if (!partial) OUTPOST_RETURN_IF_ERROR(export_balances(*store, out, node_id.value_or(""), state));

  const std::uint64_t now_ms = clock.now_ms();
  Json range = Json();
  if (partial) {
    range = Json{{"from", options.from ? Json(*options.from) : Json()},
                 {"to", options.to ? Json(*options.to) : Json()},
                 {"from_ms", from_ms ? Json(*from_ms) : Json()},
                 {"to_ms", to_ms ? Json(*to_ms) : Json()}};
  }
  Json manifest{{"format", bundle::kFormat},
                {"version", bundle::kVersion},
                {"network_id", crypto::to_hex(anchors->network_id)},
                {"root_public_key", crypto::to_hex(anchors->root_key)},
                {"exported_by",
                 {{"node_id", node_id.value_or("")},
                  {"name", node_name.value_or("")},
                  {"role", role.value_or("store")}}},
                {"created_ms", now_ms},
                {"created", utc_iso(now_ms)},
                {"range", range},
                {"origins", state.origins},
                {"counts", state.counts},
                {"files", state.files}};
  OUTPOST_ASSIGN_OR_RETURN(FileSink mf, FileSink::create(out, bundle::kManifestFile));
  OUTPOST_RETURN_IF_ERROR(mf.write(manifest.dump(2) + "\n"));
  OUTPOST_ASSIGN_OR_RETURN(Json mf_entry, mf.close());
  (void)mf_entry;
  OUTPOST_RETURN_IF_ERROR(fsync_dir(join(out, bundle::kOpsDir)));
  OUTPOST_RETURN_IF_ERROR(fsync_dir(out));
  OUTPOST_ASSIGN_OR_RETURN(std::string incomplete,
                           completeness_warning(*store, *anchors, roster.get(), partial));
  return Json{{"bundle", out},
              {"manifest", manifest},
              {"completeness_warning", incomplete.empty() ? Json() : Json(incomplete)}};
}

ExportProgress stderr_progress() {
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  return [tty, last_line = std::uint64_t{0}](std::uint64_t done, std::uint64_t total) mutable {
    constexpr std::uint64_t kLineEveryOps = 100'000;
    const std::uint64_t pct = total == 0 ? 100 : done * 100 / total;
    if (tty) {
      std::fprintf(stderr, "\rexport-audit: %llu/%llu ops (%llu%%)%s",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   static_cast<unsigned long long>(pct), done >= total ? "\n" : "");
    } else if (done / kLineEveryOps > last_line) {
      last_line = done / kLineEveryOps;
      std::fprintf(stderr, "export-audit: %llu/%llu ops (%llu%%)\n",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   static_cast<unsigned long long>(pct));
    }
  };
}

std::string checkpoint_text(const Json& result) {
  std::string out = "signed " + std::to_string(result["signed"].get<std::uint64_t>()) +
                    " new checkpoint(s)\n";
  for (const auto& c : result["checkpoints"]) {
    out += "  " + c["origin"].get<std::string>() + " seq " +
           std::to_string(c["seq"].get<std::uint64_t>()) +
           (c["new"].get<bool>() ? "  root " + c["root"].get<std::string>() : "  (unchanged)") +
           "\n";
  }
  const Json& t = result["tree_heads"];
  out += std::string(t["new"].get<bool>() ? "signed" : "unchanged:") + " tree head set v" +
         std::to_string(t["version"].get<std::uint64_t>()) + " (roster v" +
         std::to_string(t["roster_version"].get<std::uint64_t>()) + "): " +
         std::to_string(t["origins"].get<std::uint64_t>()) + " origins, " +
         std::to_string(t["ops"].get<std::uint64_t>()) + " ops\n";
  return out;
}

std::string export_text(const Json& result) {
  const Json& m = result["manifest"];
  const Json& c = m["counts"];
  std::string out = "wrote audit bundle " + result["bundle"].get<std::string>() + ": " +
                    std::to_string(c["ops"].get<std::uint64_t>()) + " ops of " +
                    std::to_string(c["origins"].get<std::uint64_t>()) + " origins, " +
                    std::to_string(c["rosters"].get<std::uint64_t>()) + " roster versions, " +
                    std::to_string(c["checkpoints"].get<std::uint64_t>()) + " checkpoints, " +
                    std::to_string(c["tree_heads"].get<std::uint64_t>()) + " tree head sets";
  if (c.contains("members")) {
    out += ", balances of " + std::to_string(c["members"].get<std::uint64_t>()) + " members";
  } else {
    out += " (date range: no balances)";
  }
  out += "\nverify it with: outpost-audit verify " + result["bundle"].get<std::string>() +
         " --root " + m["root_public_key"].get<std::string>() +
         "\n(take the root key from your own records, not from the bundle)\n";
  if (result.contains("completeness_warning") && result["completeness_warning"].is_string()) {
    out +=
        "warning: the bundle cannot prove completeness, so verify will exit 3 unless given "
        "--allow-incomplete: " +
        result["completeness_warning"].get<std::string>() + "\n";
  }
  return out;
}

}  // namespace outpost::node
