// Ledger (outpost/node/ledger.h), its core: creating and opening a data dir, the HQ-signed
// documents in force (roster, program rules, tree head sets), the group-commit batch and alerts.
// The other responsibilities of Ledger are in the ledger_*.cc files listed in ledger_internal.h.
#include "outpost/node/ledger.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "ledger_internal.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/identity.h"
#include "outpost/node/log.h"

namespace outpost::node {

namespace fs = std::filesystem;
using ledger_internal::kMetaAwaitingPeer;
using ledger_internal::kMetaOwnSeqFloor;
using sync::NodeId;

namespace {

std::string join(const std::string& dir, const char* file) {
  return (fs::path(dir) / file).string();
}

}  // namespace

Status Ledger::init(const std::string& dir, const InitOptions& options) {
  OUTPOST_RETURN_IF_ERROR(validate_name(options.name).with_context("node name"));
  if (options.role != "store" && options.role != "hq")
    return Status::invalid("role must be store or hq");
  std::error_code ec;
  if (fs::exists(join(dir, kDbFile), ec)) {
    return Status::invalid("data dir " + dir + " is already initialized");
  }
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create data dir " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);

  crypto::SigningKey key = crypto::SigningKey::generate();
  NodeId id{};
  crypto::random_bytes(id);
  OUTPOST_RETURN_IF_ERROR(crypto::write_signing_key(join(dir, kSigningKeyFile), key));
  auto store = storage::Store::open(join(dir, kDbFile), storage::OpenMode::kCreate);
  if (!store.is_ok()) return store.status();
  auto& s = *store.value();
  OUTPOST_ASSIGN_OR_RETURN(storage::Transaction txn, s.begin());
  OUTPOST_RETURN_IF_ERROR(s.set_meta("node_id", sync::id_hex(id)));
  OUTPOST_RETURN_IF_ERROR(s.set_meta("node_name", options.name));
  OUTPOST_RETURN_IF_ERROR(s.set_meta("role", options.role));
  OUTPOST_RETURN_IF_ERROR(s.set_meta("signing_public_key", crypto::to_hex(key.public_key())));
  OUTPOST_RETURN_IF_ERROR(s.set_meta("hlc", "0.0"));
  OUTPOST_RETURN_IF_ERROR(ensure_noise_key(dir, s));
  return txn.commit();
}

Result<std::unique_ptr<storage::Store>> open_data_dir_store(const std::string& dir,
                                                            const storage::StoreOptions& options) {
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::permission("cannot read data dir " + dir + ": " + ec.message());
  }
  if (!fs::exists(st)) return Status::not_found("data dir " + dir + " does not exist");
  if (!fs::is_directory(st))
    return Status::not_found(dir + " is not a directory, so not an Outpost data dir");
  const std::string db = join(dir, kDbFile);
  if (!options.vfs.empty()) return storage::Store::open(db, storage::OpenMode::kExisting, options);
  const bool has_db = fs::exists(db, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::permission("cannot read data dir " + dir + ": " + ec.message());
  }
  if (!has_db) {
    return Status::not_found(dir + " is not an Outpost data dir (no " + kDbFile +
                             "); run: outpost init --data " + dir);
  }
  if (::access(db.c_str(), R_OK) != 0) {
    return Status::permission("cannot read " + db + ": " + std::strerror(errno));
  }
  return storage::Store::open(db, storage::OpenMode::kExisting);
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& dir, sync::Clock& clock,
                                             const storage::StoreOptions& store_options) {
  OUTPOST_ASSIGN_OR_RETURN(auto store, open_data_dir_store(dir, store_options));
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey key,
                           crypto::read_signing_key(join(dir, kSigningKeyFile)));
  OUTPOST_ASSIGN_OR_RETURN(auto id_hex, store->get_meta("node_id"));
  OUTPOST_ASSIGN_OR_RETURN(auto name, store->get_meta("node_name"));
  OUTPOST_ASSIGN_OR_RETURN(auto pk_hex, store->get_meta("signing_public_key"));
  if (!id_hex || !name || !pk_hex) return Status::corruption("database has no node identity");
  auto id = sync::parse_id(*id_hex);
  if (!id.is_ok()) return Status::corruption("stored node id is damaged");
  if (*pk_hex != crypto::to_hex(key.public_key())) {
    return Status::corruption("key file " + join(dir, kSigningKeyFile) +
                              " does not belong to this node");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto role, store->get_meta("role"));
  OUTPOST_ASSIGN_OR_RETURN(auto awaiting, store->get_meta(kMetaAwaitingPeer));
  OUTPOST_ASSIGN_OR_RETURN(auto floor, store->get_meta(kMetaOwnSeqFloor));
  std::unique_ptr<Ledger> l(new Ledger(std::move(store), std::move(key), clock));
  l->node_id_ = *id;
  l->node_name_ = *name;
  l->is_hq_ = role.value_or("store") == "hq";
  l->awaiting_peer_ = awaiting.value_or("0") == "1";
  if (floor) {
    char* end = nullptr;
    l->own_seq_floor_ = std::strtoull(floor->c_str(), &end, 10);
    if (floor->empty() || *end != '\0')
      return Status::corruption("stored own_seq_floor is damaged");
  }
  auto rules = load_rules_file(join(dir, kRulesFile));
  if (rules.is_ok()) {
    l->rules_ = std::move(rules).value();
    l->rules_source_ = "file";
  } else if (rules.status().code() == Code::kNotFound) {
    l->rules_ = sync::default_rules();
  } else {
    return rules.status();
  }
  OUTPOST_RETURN_IF_ERROR(l->reload_roster());
  OUTPOST_RETURN_IF_ERROR(l->reload_signed_rules());
  OUTPOST_ASSIGN_OR_RETURN(auto heads, l->store_->latest_tree_head_set());
  l->tree_head_version_ = heads ? heads->version : 0;
  return l;
}

Status Ledger::accept_tree_heads(sync::ByteView body, sync::ByteView sig) {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store_));
  if (!anchors)
    return Status::not_found("this node is not enrolled; it cannot check HQ's tree head sets");
  OUTPOST_ASSIGN_OR_RETURN(
      sync::SignedTreeHeadSet accepted,
      accept_tree_head_set(*store_, *anchors, roster_ ? roster_->version : 0, body, sig));
  tree_head_version_ = accepted.set.version;
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  for (const auto& h : accepted.set.heads) {
    auto held = vv.find(h.origin);
    if (h.tree_size == 0 || held == vv.end() || held->second < h.tree_size) continue;
    OUTPOST_ASSIGN_OR_RETURN(auto op, store_->get_op(h.origin, h.tree_size));
    if (op && op->hash != h.head_hash) {
      raise_alert("checkpoint_mismatch", sync::id_hex(h.origin),
                  "HQ's tree head set v" + std::to_string(accepted.set.version) +
                      " names another op at seq " + std::to_string(h.tree_size) +
                      " of this origin than the one held here");
    }
  }
  log(LogLevel::kInfo, "accepted HQ's tree head set",
      {{"version", std::to_string(tree_head_version_)},
       {"origins", std::to_string(accepted.set.heads.size())}});
  return Status::ok();
}

Result<bool> Ledger::refresh_tree_heads() {
  OUTPOST_ASSIGN_OR_RETURN(auto heads, store_->latest_tree_head_set());
  const std::uint64_t newest = heads ? heads->version : 0;
  if (newest == tree_head_version_) return false;
  tree_head_version_ = newest;
  return true;
}

Status Ledger::reload_signed_rules() {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store_));
  if (!anchors) return Status::ok();
  OUTPOST_ASSIGN_OR_RETURN(auto signed_rules, load_signed_rules(*store_, *anchors));
  if (!signed_rules) return Status::ok();
  rules_ = std::move(signed_rules->rules);
  rules_source_ = "hq";
  signed_rules_version_ = rules_.version;
  return Status::ok();
}

Status Ledger::accept_rules(sync::ByteView body, sync::ByteView sig) {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store_));
  if (!anchors)
    return Status::not_found("this node is not enrolled; it cannot check program rules");
  if (signed_rules_version_ != 0) {
    // Cheap pre-check: a stale offer is refused without verifying its signature.
    auto offered = sync::decode_rules(body);
    if (offered.is_ok() && offered->rules.version <= signed_rules_version_) {
      return Status::refused("rules v" + std::to_string(offered->rules.version) +
                             " are not newer than v" + std::to_string(signed_rules_version_));
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedRules accepted,
                           node::accept_rules(*store_, *anchors, body, sig));
  rules_ = std::move(accepted.rules);
  rules_source_ = "hq";
  signed_rules_version_ = rules_.version;
  log(LogLevel::kInfo, "program rules in force",
      {{"version", std::to_string(rules_.version)}, {"source", "hq"}});
  return Status::ok();
}

Result<bool> Ledger::refresh_rules() {
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store_->latest_rules());
  const std::uint64_t newest = stored ? stored->version : 0;
  if (newest == signed_rules_version_) return false;
  OUTPOST_RETURN_IF_ERROR(reload_signed_rules());
  log(LogLevel::kInfo, "program rules reloaded from the database",
      {{"version", std::to_string(rules_.version)}});
  return true;
}

Status Ledger::reload_roster() {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store_));
  if (!anchors) {
    roster_.reset();
    return Status::ok();
  }
  OUTPOST_ASSIGN_OR_RETURN(auto roster, load_roster(*store_, *anchors));
  if (!roster) return Status::corruption("this node is enrolled but holds no roster");
  roster_ = std::move(roster);
  return Status::ok();
}

Result<bool> Ledger::refresh_roster() {
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store_->latest_roster());
  const std::uint64_t held = roster_ ? roster_->version : 0;
  const std::uint64_t newest = stored ? stored->version : 0;
  if (newest == held) return false;
  OUTPOST_RETURN_IF_ERROR(reload_roster());
  log(LogLevel::kInfo, "roster reloaded from the database",
      {{"version", std::to_string(roster_ ? roster_->version : 0)}});
  return true;
}

Status Ledger::accept_roster(sync::ByteView body, sync::ByteView sig) {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*store_));
  if (!anchors) return Status::not_found("this node is not enrolled; it cannot check a roster");
  OUTPOST_ASSIGN_OR_RETURN(auto roster, node::accept_roster(*store_, *anchors, body, sig));
  roster_ = std::move(roster);
  return Status::ok();
}

Status Ledger::signing_allowed() const {
  if (!roster_) return Status::ok();
  const sync::Revocation* rev = roster_->revocation(node_id_);
  if (rev == nullptr) return Status::ok();
  return Status::permission("this node ('" + node_name_ + "', " + sync::id_hex(node_id_) +
                            ") is revoked by HQ in roster v" + std::to_string(roster_->version) +
                            " (its ops after seq " + std::to_string(rev->after_seq) +
                            " are invalid); it can no longer sign ops or connect to peers. "
                            "Enroll a new node to replace it");
}

std::optional<crypto::PublicKey> Ledger::origin_key(const NodeId& origin) const {
  if (origin == node_id_) return key_.public_key();
  if (roster_) {
    if (auto key = roster_->signing_key(origin)) return key;
  }
  return std::nullopt;
}

Status Ledger::begin_batch() {
  OUTPOST_CHECK(!batch_);
  OUTPOST_ASSIGN_OR_RETURN(storage::Transaction txn, store_->begin());
  batch_.emplace(std::move(txn));
  return Status::ok();
}

Status Ledger::commit_batch() {
  OUTPOST_CHECK(batch_);
  Status st = batch_->commit();
  batch_.reset();
  return st;
}

void Ledger::raise_alert(const std::string& kind, const std::string& node,
                         const std::string& message) {
  storage::Alert a;
  a.at_ms = static_cast<std::int64_t>(clock_.now_ms());
  a.kind = kind;
  a.node = node;
  a.message = message;
  Status st = store_->add_alert(a);
  if (!st.is_ok()) {
    // Alerts are best effort; the caller's operation does not depend on them.
  }
}

}  // namespace outpost::node
