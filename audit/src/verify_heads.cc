// Stage 5 of the verifier (verifier.h): HQ's checkpoints and tree head sets against the logs, and
// the completeness they prove (no origin and no log tail HQ vouched for was removed).
#include <algorithm>

#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "verifier.h"

namespace outpost::audit::internal {

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
  std::stable_sort(tree_heads_.begin(), tree_heads_.end(),
                   [](const auto& a, const auto& b) { return a.set.version < b.set.version; });
  // One version names one set: a second, different body is HQ contradicting itself.
  std::vector<sync::SignedTreeHeadSet> distinct;
  for (auto& t : tree_heads_) {
    if (!distinct.empty() && distinct.back().set.version == t.set.version) {
      if (distinct.back().body != t.body) {
        add("tree_heads_conflict", "", t.set.version, "", file,
            "HQ signed two different tree head sets with version " + std::to_string(t.set.version));
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
              what + " shrinks this origin's log to " + std::to_string(now->tree_size) + " ops; v" +
                  std::to_string(prev.version) + " said " + std::to_string(old.tree_size));
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
  if (!keys_.count(origin)) return;               // checkpoint_unknown_origin says it already
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
          " ops of this origin" + name +
          ", but the bundle has no log for it: the origin was "
          "removed");
  taint_all_ = true;
  taint_all_reason_ = "an origin HQ holds ops of is missing: its members are unknown";
}

namespace {

// Groups the claims by size; equal claims (a checkpoint and a set line) are one head, and two
// different heads for one size are HQ contradicting itself (one checkpoint_conflict). Ascending.
std::vector<HeadGroup> group_claims(std::vector<HeadClaim>& claims) {
  std::sort(claims.begin(), claims.end(), [](const HeadClaim& a, const HeadClaim& b) {
    return std::tie(a.tree_size, a.root, a.head_hash, a.from_set) <
           std::tie(b.tree_size, b.root, b.head_hash, b.from_set);
  });
  std::vector<HeadGroup> groups;
  for (const HeadClaim& c : claims) {
    if (groups.empty() || groups.back().n != c.tree_size) {
      groups.push_back(HeadGroup{c.tree_size, {}, false});
    }
    HeadGroup& g = groups.back();
    g.has_checkpoint = g.has_checkpoint || !c.from_set;
    const HeadClaim* last = g.variants.empty() ? nullptr : g.variants.back();
    if (last == nullptr || last->root != c.root || last->head_hash != c.head_hash) {
      g.variants.push_back(&c);
    }
  }
  return groups;
}

}  // namespace

// Every signed head of one origin against its log: a head within the log must match the Merkle
// root and head op recomputed from the ops; heads beyond it prove a cut tail (check_heads_beyond);
// successive matched heads must be consistent.
void Verifier::check_origin_checkpoints(OriginLog& log, std::vector<HeadClaim>& claims) {
  const std::vector<HeadGroup> groups = group_claims(claims);
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
    const HeadGroup& g = groups[gi];
    const std::uint64_t n = g.n;
    if (n < log.entry.prefix_size) continue;  // before a range bundle's first op
    if (n > have) {
      check_heads_beyond(log, groups, gi, have);
      break;
    }
    if (!complete) {
      while (acc->size() < n) acc->append(log.chosen[next++]->leaf);
    }
    const Hash32 root = complete ? log.tree.root(n) : acc->root();
    const Hash32 head =
        n == log.entry.prefix_size ? log.entry.prefix_prev : log.chosen[n - first]->hash;
    const HeadClaim* right = nullptr;
    for (const HeadClaim* v : g.variants) {
      if (v->root == root && v->head_hash == head) right = v;
    }
    if (g.variants.size() > 1) report_conflict(log, g, right);
    if (right != nullptr) {
      matched.push_back(right);
    } else {
      report_unmatched_head(log, g, root);
    }
  }
  if (complete) check_consistency(log, matched);
  report_.counts["checkpoints_matched"] =
      report_.counts.value("checkpoints_matched", std::uint64_t{0}) + matched.size();
}

void Verifier::report_conflict(const OriginLog& log, const HeadGroup& g, const HeadClaim* right) {
  std::string sources;
  for (const HeadClaim* v : g.variants) sources += (sources.empty() ? "" : ", ") + v->source;
  add("checkpoint_conflict", log.hex, g.n, "",
      g.variants.back()->from_set ? bundle::kTreeHeadsFile : bundle::kCheckpointsFile,
      "HQ signed " + std::to_string(g.variants.size()) + " different tree heads for this size (" +
          sources + ")" + (right ? "; the ops match the " + right->source + "'s" : ""));
}

// The heads from groups[gi] on lie beyond the `have` ops the log holds.
void Verifier::check_heads_beyond(OriginLog& log, const std::vector<HeadGroup>& groups,
                                  std::size_t gi, std::uint64_t have) {
  const std::uint64_t n = groups[gi].n;
  for (std::size_t k = gi; k < groups.size(); ++k) {
    if (groups[k].variants.size() > 1) report_conflict(log, groups[k], nullptr);
  }
  // A date-range bundle ends where its range ends, so HQ's later heads lie beyond it by design:
  // the exporter leaves such checkpoints out, but a tree head set lists every origin anyway.
  // There, only a checkpoint beyond the log proves a cut tail.
  const bool proves_cut =
      !partial_ || std::any_of(groups.begin() + static_cast<std::ptrdiff_t>(gi), groups.end(),
                               [](const HeadGroup& x) { return x.has_checkpoint; });
  if (!proves_cut) return;
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
}

// A head within the log that no variant of its size matches (`root`: the recomputed root).
void Verifier::report_unmatched_head(OriginLog& log, const HeadGroup& g, const Hash32& root) {
  const std::uint64_t n = g.n;
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
        c.root != root
            ? "the ops 1.." + std::to_string(n) + " hash to " + crypto::to_hex(root) +
                  ", not to the root HQ signed in its " + c.source + " " + crypto::to_hex(c.root)
            : "the head op's hash differs from the one HQ signed in its " + c.source);
  }
}

// Consistency between successive matched heads of a complete log (RFC 9162 §2.1.4).
void Verifier::check_consistency(const OriginLog& log,
                                 const std::vector<const HeadClaim*>& matched) {
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

}  // namespace outpost::audit::internal
