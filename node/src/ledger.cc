#include "outpost/node/ledger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "outpost/base/limits.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/identity.h"
#include "outpost/node/log.h"
#include "outpost/sync/member_rules.h"
#include "outpost/sync/rule_book.h"

namespace outpost::node {

namespace fs = std::filesystem;
using sync::Account;
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

namespace {

constexpr const char* kMetaAwaitingPeer = "restored_awaiting_peer";
constexpr const char* kMetaOwnSeqFloor = "own_seq_floor";

std::string join(const std::string& dir, const char* file) { return (fs::path(dir) / file).string(); }

Result<sync::Hlc> parse_hlc(const std::string& s) {
  auto dot = s.find('.');
  if (dot == std::string::npos) return Status::corruption("bad stored hlc");
  try {
    return sync::Hlc{std::stoull(s.substr(0, dot)), static_cast<std::uint32_t>(std::stoul(s.substr(dot + 1)))};
  } catch (...) {
    return Status::corruption("bad stored hlc");
  }
}

const sync::EscrowCounter& counter_of(const MemberState& m, Account a) {
  return a == Account::kPoints ? m.points : m.wallet;
}

Json rights_json(const sync::EscrowCounter& c, const NodeId& here) {
  Json j;
  j["balance"] = c.value();
  j["rights_here"] = c.rights(here);
  Json by = Json::object();
  for (const auto& [node, r] : c.rights_by_node()) by[sync::id_hex(node)] = r;
  j["rights_by_node"] = by;
  return j;
}

// The stored answer for one of this node's own ops that it got back from a peer (the first
// answer's balances are gone with the lost copy): enough for a POS replay.
Json recovered_answer(const sync::SignedOp& sop) {
  const Op& op = sop.op;
  Json j;
  j["op"] = sync::op_ref_string(op.origin, op.seq);
  j["kind"] = sync::kind_name(op.kind);
  j["member"] = sync::id_hex(op.member);
  if (op.account != Account::kNone) j["amount"] = op.amount;
  if (op.kind == OpKind::kEarn) j["purchase_minor"] = op.spend_minor;
  j["hash"] = crypto::to_hex(sop.hash);
  j["recovered_from_peer"] = true;
  return j;
}

// The answer to a request refused by a member rule (sync/member_rules.h).
Reply rule_reply(const sync::RuleRefusal& r) {
  Reply out;
  out.refused = true;
  out.body["error"] = r.code;
  out.body["message"] = r.message;
  return out;
}

// What this ledger knows of `origin` for the log rule: its key and revocation cut-off.
sync::OriginTrust trust_in(const Ledger& ledger, const NodeId& origin) {
  sync::OriginTrust trust;
  trust.key = ledger.origin_key(origin);
  if (const auto& roster = ledger.roster()) {
    if (const sync::Revocation* rev = roster->revocation(origin)) trust.cutoff = rev->after_seq;
  }
  return trust;
}

// Refuses `op` when the member's status forbids it (sync::status_refusal).
std::optional<Reply> status_check(const MemberState& m, const Op& op) {
  auto no = sync::status_refusal(m, op);
  return no ? std::optional<Reply>(rule_reply(*no)) : std::nullopt;
}

}  // namespace

Status Ledger::init(const std::string& dir, const InitOptions& options) {
  OUTPOST_RETURN_IF_ERROR(validate_name(options.name).with_context("node name"));
  if (options.role != "store" && options.role != "hq") return Status::invalid("role must be store or hq");
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
  if (!fs::is_directory(st)) return Status::not_found(dir + " is not a directory, so not an Outpost data dir");
  const std::string db = join(dir, kDbFile);
  if (!options.vfs.empty()) return storage::Store::open(db, storage::OpenMode::kExisting, options);
  const bool has_db = fs::exists(db, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::permission("cannot read data dir " + dir + ": " + ec.message());
  }
  if (!has_db) {
    return Status::not_found(dir + " is not an Outpost data dir (no " + kDbFile + "); run: outpost init --data " + dir);
  }
  if (::access(db.c_str(), R_OK) != 0) {
    return Status::permission("cannot read " + db + ": " + std::strerror(errno));
  }
  return storage::Store::open(db, storage::OpenMode::kExisting);
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& dir, sync::Clock& clock,
                                             const storage::StoreOptions& store_options) {
  OUTPOST_ASSIGN_OR_RETURN(auto store, open_data_dir_store(dir, store_options));
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey key, crypto::read_signing_key(join(dir, kSigningKeyFile)));
  OUTPOST_ASSIGN_OR_RETURN(auto id_hex, store->get_meta("node_id"));
  OUTPOST_ASSIGN_OR_RETURN(auto name, store->get_meta("node_name"));
  OUTPOST_ASSIGN_OR_RETURN(auto pk_hex, store->get_meta("signing_public_key"));
  if (!id_hex || !name || !pk_hex) return Status::corruption("database has no node identity");
  auto id = sync::parse_id(*id_hex);
  if (!id.is_ok()) return Status::corruption("stored node id is damaged");
  if (*pk_hex != crypto::to_hex(key.public_key())) {
    return Status::corruption("key file " + join(dir, kSigningKeyFile) + " does not belong to this node");
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
    if (floor->empty() || *end != '\0') return Status::corruption("stored own_seq_floor is damaged");
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
  if (!anchors) return Status::not_found("this node is not enrolled; it cannot check HQ's tree head sets");
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedTreeHeadSet accepted,
                           accept_tree_head_set(*store_, *anchors, roster_ ? roster_->version : 0, body, sig));
  tree_head_version_ = accepted.set.version;
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  for (const auto& h : accepted.set.heads) {
    auto held = vv.find(h.origin);
    if (h.tree_size == 0 || held == vv.end() || held->second < h.tree_size) continue;
    OUTPOST_ASSIGN_OR_RETURN(auto op, store_->get_op(h.origin, h.tree_size));
    if (op && op->hash != h.head_hash) {
      raise_alert("checkpoint_mismatch", sync::id_hex(h.origin),
                  "HQ's tree head set v" + std::to_string(accepted.set.version) + " names another op at seq " +
                      std::to_string(h.tree_size) + " of this origin than the one held here");
    }
  }
  log(LogLevel::kInfo, "accepted HQ's tree head set", {{"version", std::to_string(tree_head_version_)},
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
  if (!anchors) return Status::not_found("this node is not enrolled; it cannot check program rules");
  if (signed_rules_version_ != 0) {
    // Cheap pre-check: a stale offer is refused without verifying its signature.
    auto offered = sync::decode_rules(body);
    if (offered.is_ok() && offered->rules.version <= signed_rules_version_) {
      return Status::refused("rules v" + std::to_string(offered->rules.version) + " are not newer than v" +
                             std::to_string(signed_rules_version_));
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedRules accepted, node::accept_rules(*store_, *anchors, body, sig));
  rules_ = std::move(accepted.rules);
  rules_source_ = "hq";
  signed_rules_version_ = rules_.version;
  log(LogLevel::kInfo, "program rules in force", {{"version", std::to_string(rules_.version)}, {"source", "hq"}});
  return Status::ok();
}

Result<bool> Ledger::refresh_rules() {
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store_->latest_rules());
  const std::uint64_t newest = stored ? stored->version : 0;
  if (newest == signed_rules_version_) return false;
  OUTPOST_RETURN_IF_ERROR(reload_signed_rules());
  log(LogLevel::kInfo, "program rules reloaded from the database", {{"version", std::to_string(rules_.version)}});
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

Json Ledger::refusal(const char* code, const std::string& message) const {
  Json j;
  j["error"] = code;
  j["message"] = message;
  return j;
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


Result<bool> Ledger::replay(const std::string& request_id, const Op& asked, Reply& r) {
  OUTPOST_ASSIGN_OR_RETURN(auto prior, store_->find_request(request_id));
  if (!prior) return false;
  const std::string ref = sync::op_ref_string(prior->origin, prior->seq);
  OUTPOST_ASSIGN_OR_RETURN(auto made, store_->get_op(prior->origin, prior->seq));
  if (!made) return Status::corruption("request " + request_id + " names op " + ref + ", which is not held");
  if (!sync::same_request(made->op, asked)) {
    return Status::invalid("request_id '" + request_id + "' was already used for another operation (" +
                           sync::kind_name(made->op.kind) + " " + ref + "); use a new request_id");
  }
  r.replayed = true;
  try {
    r.body = Json::parse(prior->response);
  } catch (const std::exception&) {
    return Status::corruption("stored answer for request " + request_id + " is damaged");
  }
  r.body["replayed"] = true;
  return true;
}

Result<Reply> Ledger::execute(const std::string& request_id, Op op, bool member_must_exist,
                              const Check& check) {
  OUTPOST_RETURN_IF_ERROR(validate_request_id(request_id));
  // Either a transaction of our own, or a savepoint inside the open group-commit batch. Both
  // roll back on every early return below.
  std::optional<storage::Transaction> txn;
  std::optional<storage::Savepoint> sp;
  if (batch_) {
    OUTPOST_ASSIGN_OR_RETURN(storage::Savepoint s, storage::Savepoint::begin(store_->db()));
    sp.emplace(std::move(s));
  } else {
    OUTPOST_ASSIGN_OR_RETURN(storage::Transaction t, store_->begin());
    txn.emplace(std::move(t));
  }
  Reply prior;
  OUTPOST_ASSIGN_OR_RETURN(bool seen, replay(request_id, op, prior));
  if (seen) return prior;  // nothing changed
  OUTPOST_RETURN_IF_ERROR(signing_allowed());
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  OUTPOST_RETURN_IF_ERROR(check_fence(head.seq));
  OUTPOST_ASSIGN_OR_RETURN(auto hlc_text, store_->get_meta("hlc"));
  sync::HlcClock hlc;
  if (hlc_text) {
    OUTPOST_ASSIGN_OR_RETURN(sync::Hlc last, parse_hlc(*hlc_text));
    hlc = sync::HlcClock(last);
  }
  op.origin = node_id_;
  op.seq = head.seq + 1;
  op.prev = head.hash;
  op.hlc = hlc.now(clock_.now_ms());
  op.request_id = request_id;

  OUTPOST_ASSIGN_OR_RETURN(auto member, store_->load_member(op.member));
  if (member_must_exist && (!member || !member->fields.count(Field::kCard))) {
    return Status::not_found("unknown member " + sync::id_hex(op.member));
  }
  OUTPOST_ASSIGN_OR_RETURN(auto refused, check(op, member ? &*member : nullptr));
  if (refused) return *refused;  // txn rolls back
  OUTPOST_RETURN_IF_ERROR(sync::validate_op(op));

  sync::SignedOp sop = sync::sign_op(op, key_);
  // The member was loaded above in this transaction: append_op need not read it again.
  static const MemberState kNoMember;
  OUTPOST_RETURN_IF_ERROR(store_->append_op(sop, member ? &*member : &kNoMember));
  MemberState after = member ? *member : MemberState{};
  OUTPOST_RETURN_IF_ERROR(sync::apply_effects(after, op));
  // Invariant: this node's rights never go below zero (docs/architecture.md, "Escrow counter").
  OUTPOST_CHECK(after.points.rights(node_id_) >= 0 && after.wallet.rights(node_id_) >= 0);

  Reply reply;
  reply.body["op"] = sync::op_ref_string(op.origin, op.seq);
  reply.body["kind"] = sync::kind_name(op.kind);
  reply.body["member"] = sync::id_hex(op.member);
  if (op.account != Account::kNone) reply.body["amount"] = op.amount;
  if (op.kind == OpKind::kEarn) reply.body["purchase_minor"] = op.spend_minor;
  reply.body["points"] = rights_json(after.points, node_id_);
  reply.body["wallet"] = rights_json(after.wallet, node_id_);
  reply.body["hash"] = crypto::to_hex(sop.hash);
  reply.text = reply.body.dump();
  OUTPOST_RETURN_IF_ERROR(store_->put_request(request_id, node_id_, op.seq, reply.text));
  OUTPOST_RETURN_IF_ERROR(store_->set_meta("hlc", op.hlc.to_string()));
  OUTPOST_RETURN_IF_ERROR(sp ? sp->release() : txn->commit());
  return reply;
}

Result<Reply> Ledger::enroll(const EnrollRequest& req) {
  OUTPOST_RETURN_IF_ERROR(validate_card(req.card));
  OUTPOST_RETURN_IF_ERROR(validate_name(req.name));
  if (!req.phone.empty()) OUTPOST_RETURN_IF_ERROR(validate_phone(req.phone));
  if (!req.birthday.empty()) OUTPOST_RETURN_IF_ERROR(validate_birthday(req.birthday));
  Op op;
  op.kind = OpKind::kEnroll;
  // From the Env, so that a simulated chain is one run per seed (SystemEnv: the OS source).
  for (std::size_t i = 0; i < op.member.size(); i += 8) {
    const std::uint64_t r = clock_.random_u64();
    std::memcpy(op.member.data() + i, &r, std::min<std::size_t>(8, op.member.size() - i));
  }
  op.fields.push_back({Field::kCard, req.card});
  op.fields.push_back({Field::kName, req.name});
  if (!req.phone.empty()) op.fields.push_back({Field::kPhone, req.phone});
  if (!req.birthday.empty()) op.fields.push_back({Field::kBirthday, req.birthday});
  op.fields.push_back({Field::kHomeStore, sync::id_hex(node_id_)});
  op.fields.push_back({Field::kStatus, "active"});
  const std::string card = req.card;
  return execute(req.request_id, op, false,
                 [this, card](Op&, const MemberState*) -> Result<std::optional<Reply>> {
                   OUTPOST_ASSIGN_OR_RETURN(auto holders, store_->find_members(Field::kCard, card));
                   if (!holders.empty()) {
                     Reply r;
                     r.refused = true;
                     r.body = refusal("card_in_use", "card " + card + " already belongs to member " +
                                                         sync::id_hex(holders.front()));
                     return std::optional<Reply>(r);
                   }
                   return std::optional<Reply>();
                 });
}

Result<Reply> Ledger::update_profile(const std::string& request_id, const MemberId& member,
                                     const std::vector<sync::FieldValue>& fields, bool reopen) {
  if (fields.empty()) return Status::invalid("no profile field to update");
  for (const auto& f : fields) {
    switch (f.field) {
      case Field::kCard: OUTPOST_RETURN_IF_ERROR(validate_card(f.value)); break;
      case Field::kName: OUTPOST_RETURN_IF_ERROR(validate_name(f.value)); break;
      case Field::kPhone: OUTPOST_RETURN_IF_ERROR(validate_phone(f.value)); break;
      case Field::kBirthday: OUTPOST_RETURN_IF_ERROR(validate_birthday(f.value)); break;
      case Field::kStatus:
        if (f.value != "active" && f.value != "blocked" && f.value != "closed") {
          return Status::invalid("status must be active, blocked or closed");
        }
        break;
      default:
        if (f.value.size() > limits::kFieldValueBytesMax) return Status::invalid("field value too long");
    }
  }
  Op op;
  op.kind = OpKind::kProfile;
  op.member = member;
  op.fields = fields;
  return execute(request_id, op, true, [reopen](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    auto no = sync::profile_refusal(*m, o.fields, reopen);
    if (!no) return std::optional<Reply>();
    Reply r = rule_reply(*no);
    if (no->code == "wallet_not_empty") r.body["balance"] = m->wallet.value();
    return std::optional<Reply>(r);
  });
}

Result<Reply> Ledger::earn(const std::string& request_id, const MemberId& member,
                           std::uint64_t purchase_minor, const std::string& receipt) {
  if (purchase_minor == 0 || purchase_minor > limits::kAmountMax) return Status::invalid("purchase amount out of range");
  Op op;
  op.kind = OpKind::kEarn;
  op.member = member;
  op.account = Account::kPoints;
  op.spend_minor = purchase_minor;
  op.receipt = receipt;
  return execute(request_id, op, true, [this](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    if (auto no = status_check(*m, o)) return no;
    o.amount =
        sync::points_for_purchase(m, rules_, sync::month_index(o.hlc.wall_ms), o.spend_minor);
    return std::optional<Reply>();
  });
}

Result<Reply> Ledger::debit(const std::string& request_id, const MemberId& member, OpKind kind,
                            std::uint64_t amount, const std::string& receipt, const PinClearance* pin) {
  if (amount == 0 || amount > limits::kAmountMax) return Status::invalid("amount out of range");
  Op op;
  op.kind = kind;
  op.member = member;
  op.account = kind == OpKind::kRedeem ? Account::kPoints : Account::kWallet;
  op.amount = amount;
  op.receipt = receipt;
  return execute(request_id, op, true, [this, pin](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    if (auto no = status_check(*m, o)) return no;
    if (o.kind == OpKind::kSpend) {
      OUTPOST_ASSIGN_OR_RETURN(auto no, pin_cleared(*m, o, pin, "this member's wallet needs a PIN"));
      if (no) return no;
    }
    auto no = sync::rights_refusal(*m, o, node_id_);
    if (!no) return std::optional<Reply>();
    // The typed refusal, shown in full: the POS (and the rights broker) read where the rest sits.
    const sync::RuleRefusal::Rights& rights = *no->rights;
    Reply r = rule_reply(*no);
    r.body["member"] = sync::id_hex(o.member);
    r.body["account"] = o.account == Account::kPoints ? "points" : "wallet";
    r.body["requested"] = rights.requested;
    r.body["balance"] = rights.balance;
    r.body["rights_here"] = rights.here;
    r.body["shortfall"] = rights.shortfall;
    Json elsewhere = Json::object();
    for (const auto& [node, held] : rights.elsewhere) elsewhere[sync::id_hex(node)] = held;
    r.body["rights_elsewhere"] = elsewhere;
    r.body["rights_request_tried"] = false;
    return std::optional<Reply>(r);
  });
}

Result<Reply> Ledger::redeem(const std::string& request_id, const MemberId& member,
                             std::uint64_t points, const std::string& receipt) {
  return debit(request_id, member, OpKind::kRedeem, points, receipt, nullptr);
}

Result<Reply> Ledger::spend(const std::string& request_id, const MemberId& member,
                            std::uint64_t amount_minor, const std::string& receipt, const PinClearance* pin) {
  return debit(request_id, member, OpKind::kSpend, amount_minor, receipt, pin);
}

Result<Reply> Ledger::topup(const std::string& request_id, const MemberId& member,
                            std::uint64_t amount_minor, const std::string& receipt) {
  if (amount_minor == 0 || amount_minor > limits::kAmountMax) return Status::invalid("amount out of range");
  Op op;
  op.kind = OpKind::kTopup;
  op.member = member;
  op.account = Account::kWallet;
  op.amount = amount_minor;
  op.receipt = receipt;
  return execute(request_id, op, true, [](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    return status_check(*m, o);
  });
}

Result<Reply> Ledger::reverse(const std::string& request_id, const NodeId& origin, std::uint64_t seq) {
  OUTPOST_RETURN_IF_ERROR(validate_request_id(request_id));
  // Replays of an earlier reversal answer before the op checks below (the op is reversed now);
  // a request_id that made another operation is refused as by execute().
  {
    Op asked;
    asked.kind = OpKind::kReverse;
    asked.ref_origin = origin;
    asked.ref_seq = seq;
    Reply prior;
    OUTPOST_ASSIGN_OR_RETURN(bool seen, replay(request_id, asked, prior));
    if (seen) return prior;
  }
  const std::string ref = sync::op_ref_string(origin, seq);
  OUTPOST_ASSIGN_OR_RETURN(auto target, store_->get_op(origin, seq));
  if (!target) return Status::not_found("unknown op " + ref);
  const Op& t = target->op;
  if (!sync::is_reversible(t.kind)) {
    return Status::invalid("a " + std::string(sync::kind_name(t.kind)) + " op cannot be reversed");
  }
  if (origin != node_id_) {
    Reply r;
    r.refused = true;
    r.body = refusal("not_origin", "op " + ref + " was made at another node; only its origin may reverse it");
    return r;
  }
  const Op op = sync::reversal_of(t);
  return execute(request_id, op, true, [this, ref](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    if (auto no = status_check(*m, o)) return no;
    OUTPOST_ASSIGN_OR_RETURN(auto by, store_->reversed_by(o.ref_origin, o.ref_seq));
    if (by) {
      Reply r;
      r.refused = true;
      r.body = refusal("already_reversed", "op " + ref + " was already reversed by op " +
                                               sync::op_ref_string(node_id_, *by));
      return std::optional<Reply>(r);
    }
    // Undoing a credit takes rights back: only possible while this node still holds them.
    if (auto no = sync::rights_refusal(*m, o, node_id_)) return std::optional<Reply>(rule_reply(*no));
    return std::optional<Reply>();
  });
}

Result<Reply> Ledger::move_rights(const std::string& request_id, const MemberId& member, Account account,
                                  std::uint64_t amount, const NodeId& target) {
  if (amount == 0 || amount > limits::kAmountMax) return Status::invalid("amount out of range");
  if (target == node_id_) return Status::invalid("cannot move rights to this node itself");
  Op op;
  op.kind = OpKind::kMove;
  op.member = member;
  op.account = account;
  op.amount = amount;
  op.target = target;
  return execute(request_id, op, true, [this](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    if (auto no = status_check(*m, o)) return no;
    if (auto no = sync::rights_refusal(*m, o, node_id_))
      return std::optional<Reply>(rule_reply(*no));
    return std::optional<Reply>();
  });
}

Result<MemberId> Ledger::resolve_member(const std::string& id_or_card) {
  if (id_or_card.size() == 32) {
    auto id = sync::parse_id(id_or_card);
    if (id.is_ok()) return *id;
  }
  if (validate_card(id_or_card).is_ok()) {
    OUTPOST_ASSIGN_OR_RETURN(auto found, store_->find_members(Field::kCard, id_or_card));
    if (found.empty()) return Status::not_found("no member with card " + id_or_card);
    return found.front();
  }
  return Status::invalid("member must be a 32-hex-digit id or a card number, got '" + id_or_card + "'");
}

Result<std::vector<MemberId>> Ledger::find_by_card(const std::string& card) {
  OUTPOST_RETURN_IF_ERROR(validate_card(card));
  return store_->find_members(Field::kCard, card);
}

Result<std::vector<MemberId>> Ledger::find_by_phone(const std::string& phone) {
  OUTPOST_RETURN_IF_ERROR(validate_phone(phone));
  return store_->find_members(Field::kPhone, phone);
}

Result<Json> Ledger::member_json(const MemberId& member) {
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m || !m->fields.count(Field::kCard)) return Status::not_found("unknown member " + sync::id_hex(member));
  Json j;
  j["id"] = sync::id_hex(member);
  for (Field f : {Field::kCard, Field::kName, Field::kPhone, Field::kBirthday, Field::kHomeStore, Field::kStatus}) {
    j[sync::field_name(f)] = m->field(f);
  }
  j["pin_set"] = !m->field(Field::kPinHash).empty();
  const sync::PinLock lock = sync::pin_lock(*m, clock_.now_ms());
  j["pin_failures"] = lock.failures;
  j["pin_locked_until_ms"] = lock.locked_until_ms;
  std::uint32_t month = sync::month_index(clock_.now_ms());
  std::uint64_t spend = m->rolling_spend(month, rules_.window_months);
  j["tier"] = rules_.tier_for(spend).name;
  j["rolling_spend_minor"] = spend;
  j["visits"] = m->visits.total();
  j["points"] = rights_json(m->points, node_id_);
  j["wallet"] = rights_json(m->wallet, node_id_);
  return j;
}

Json Ledger::op_json(const sync::SignedOp& sop) {
  const Op& op = sop.op;
  Json j;
  j["op"] = sync::op_ref_string(op.origin, op.seq);
  j["origin"] = sync::id_hex(op.origin);
  j["seq"] = op.seq;
  j["kind"] = sync::kind_name(op.kind);
  j["hlc"] = op.hlc.to_string();
  j["member"] = sync::id_hex(op.member);
  if (op.account != Account::kNone) {
    j["account"] = sync::account_name(op.account);
    j["amount"] = op.amount;
  }
  if (op.kind == OpKind::kEarn || (op.kind == OpKind::kReverse && op.ref_kind == OpKind::kEarn)) {
    j["purchase_minor"] = op.spend_minor;
  }
  if (op.kind == OpKind::kMove) j["target"] = sync::id_hex(op.target);
  if (op.kind == OpKind::kReverse) {
    j["reverses"] = sync::op_ref_string(op.ref_origin, op.ref_seq);
    j["reversed_kind"] = sync::kind_name(op.ref_kind);
  }
  if (!op.fields.empty()) {
    Json f = Json::object();
    for (const auto& fv : op.fields) f[sync::field_name(fv.field)] = fv.field == Field::kPinHash ? "(set)" : fv.value;
    j["fields"] = f;
  }
  if (!op.request_id.empty()) j["request_id"] = op.request_id;
  if (!op.receipt.empty()) j["receipt"] = op.receipt;
  j["hash"] = crypto::to_hex(sop.hash);
  return j;
}

Result<Json> Ledger::history_json(const MemberId& member, std::size_t limit) {
  limit = std::min(limit, limits::kHistoryRowsMax);
  OUTPOST_ASSIGN_OR_RETURN(auto ops, store_->ops_of_member(member, limit));
  if (ops.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
    if (!m) return Status::not_found("unknown member " + sync::id_hex(member));
  }
  Json arr = Json::array();
  for (const auto& op : ops) {
    Json j = op_json(op);
    OUTPOST_ASSIGN_OR_RETURN(auto by, store_->reversed_by(op.op.origin, op.op.seq));
    if (by) j["reversed_by"] = sync::op_ref_string(op.op.origin, *by);
    arr.push_back(std::move(j));
  }
  return arr;
}

Result<Json> Ledger::status_json() {
  Json j;
  j["node_id"] = sync::id_hex(node_id_);
  j["name"] = node_name_;
  OUTPOST_ASSIGN_OR_RETURN(auto role, store_->get_meta("role"));
  j["role"] = role.value_or("store");
  j["signing_public_key"] = crypto::to_hex(key_.public_key());
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  Json v = Json::object();
  for (const auto& [origin, seq] : vv) v[sync::id_hex(origin)] = seq;
  j["version_vector"] = v;
  OUTPOST_ASSIGN_OR_RETURN(std::uint64_t n, store_->op_count());
  j["ops"] = n;
  j["schema_version"] = storage::kSchemaVersion;
  j["rules_version"] = rules_.version;
  j["rules_source"] = rules_source_;
  OUTPOST_ASSIGN_OR_RETURN(j["seq_fence"], fence_json());
  return j;
}

Json Ledger::rules_json() const {
  Json tiers = Json::array();
  for (const auto& t : rules_.tiers) {
    tiers.push_back({{"name", t.name}, {"threshold_minor", t.threshold_minor}, {"points_per_unit", t.points_per_unit}});
  }
  return Json{{"version", rules_.version},          {"source", rules_source_},
              {"unit_minor", rules_.unit_minor},     {"window_months", rules_.window_months},
              {"tiers", tiers}};
}

namespace {

// `log verify`'s check of one stored op of `origin` by the log rule, against the ops before it
// (`expect`: the seq that should come next; `prev`: the hash of the op before). Findings go to
// `report`; a gap is reported, and the op is then judged as if the log went on from it. Advances
// `expect` and `prev` past the op.
void check_stored_op(const NodeId& origin, const sync::OriginTrust& trust,
                     const sync::SignedOp& sop, std::uint64_t& expect, sync::Hash32& prev,
                     VerifyReport& report) {
  const std::string ref = sync::op_ref_string(origin, sop.op.seq);
  report.ops_checked++;
  if (sop.op.origin != origin) report.findings.push_back(ref + ": origin field differs");
  sync::LogRuling ruling = sync::judge_op({expect - 1, prev}, trust, sop, nullptr);
  if (ruling.verdict == sync::LogVerdict::kGap || ruling.at_held_seq) {
    report.findings.push_back(ref + ": gap, expected seq " + std::to_string(expect));
    ruling = sync::judge_op({sop.op.seq - 1, prev}, trust, sop, nullptr);
  }
  switch (ruling.verdict) {
    case sync::LogVerdict::kApply:
    case sync::LogVerdict::kUnknownOrigin:  // the origin's finding says it once
    case sync::LogVerdict::kDuplicate:      // not after a re-judge at the op's own seq
    case sync::LogVerdict::kEquivocation:
    case sync::LogVerdict::kGap:
      break;
    case sync::LogVerdict::kBadSignature:
      report.findings.push_back(ref + ": " + ruling.signature.message());
      break;
    case sync::LogVerdict::kRevoked:
      report.findings.push_back(ref + ": after its origin's revocation cutoff (seq " +
                                std::to_string(*trust.cutoff) + ")");
      break;
    case sync::LogVerdict::kFork:
      report.findings.push_back(ref + ": prev does not match the previous op's hash");
      break;
    case sync::LogVerdict::kMalformed:
      report.findings.push_back(ref +
                                ": malformed (seq 0, or a genesis op that names a previous op)");
      break;
  }
  prev = sop.hash;
  expect = sop.op.seq + 1;
}

}  // namespace

Result<VerifyReport> Ledger::verify_log() {
  VerifyReport report;
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  sync::Replica replica;
  constexpr std::size_t kBatch = 512;
  for (const auto& [origin, head_seq] : vv) {
    report.origins++;
    const sync::OriginTrust trust = trust_in(*this, origin);
    if (!trust.key) {
      report.findings.push_back("origin " + sync::id_hex(origin) + ": no known public key");
    }
    sync::Hash32 prev{};
    std::uint64_t expect = 1;
    while (expect <= head_seq) {
      auto read = store_->ops_of_origin(origin, expect, kBatch);
      if (!read.is_ok() && read.status().code() != Code::kCorruption) return read.status();
      std::vector<sync::SignedOp> batch;
      std::uint64_t stretch_end = 0;  // set when read op by op: the next read starts after it
      if (read.is_ok()) {
        batch = std::move(read).value();
      } else {
        // A stored op that no longer decodes: read this stretch one op at a time so the finding
        // names it, and go on with the rest of the log.
        const std::uint64_t last = std::min<std::uint64_t>(head_seq, expect + kBatch - 1);
        stretch_end = last;
        for (std::uint64_t seq = expect; seq <= last; ++seq) {
          auto one = store_->get_op(origin, seq);
          if (one.is_ok() && *one) {
            batch.push_back(std::move(**one));
          } else if (!one.is_ok()) {
            report.ops_checked++;
            report.findings.push_back(sync::op_ref_string(origin, seq) + ": stored op cannot be decoded: " +
                                      one.status().message());
          }
        }
        if (batch.empty()) {
          expect = last + 1;
          prev = {};
          continue;
        }
      }
      if (batch.empty()) break;
      for (const auto& sop : batch) {
        check_stored_op(origin, trust, sop, expect, prev, report);
        auto applied = replica.apply(sop.op);
        if (!applied.is_ok()) {
          report.findings.push_back(sync::op_ref_string(origin, sop.op.seq) + ": " +
                                    applied.status().message());
        }
      }
      if (stretch_end != 0) expect = std::max(expect, stretch_end + 1);
    }
    if (expect != head_seq + 1) {
      report.findings.push_back("origin " + sync::id_hex(origin) + ": log ends at seq " +
                                std::to_string(expect - 1) + " but head says " + std::to_string(head_seq));
    }
    OUTPOST_ASSIGN_OR_RETURN(storage::Head h, store_->head(origin));
    if (h.hash != prev) report.findings.push_back("origin " + sync::id_hex(origin) + ": head hash does not match the last op");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store_->load_all_members());
  std::set<MemberId> ids;
  for (const auto& [id, m] : stored) ids.insert(id);
  for (const auto& [id, m] : replica.members()) ids.insert(id);
  for (const auto& id : ids) {
    report.members_compared++;
    const MemberState* replayed = replica.member(id);
    auto it = stored.find(id);
    if (!replayed || it == stored.end() || !(it->second == *replayed)) {
      std::string detail;
      if (replayed && it != stored.end()) {
        detail = " (stored points " + std::to_string(it->second.points.value()) + ", wallet " +
                 std::to_string(it->second.wallet.value()) + "; replayed points " +
                 std::to_string(replayed->points.value()) + ", wallet " + std::to_string(replayed->wallet.value()) + ")";
      }
      report.findings.push_back("member " + sync::id_hex(id) + ": stored state differs from the replay of the log" + detail);
    }
  }
  return report;
}

Result<Reply> Ledger::set_pin(const std::string& request_id, const MemberId& member, const std::string& pin,
                             const PinClearance* authority) {
  OUTPOST_RETURN_IF_ERROR(validate_pin(pin));
  OUTPOST_ASSIGN_OR_RETURN(std::string hash, crypto::hash_pin(pin));
  return set_pin_hash(request_id, member, hash, authority);
}

Result<Reply> Ledger::set_pin_hash(const std::string& request_id, const MemberId& member,
                                  const std::string& pin_hash, const PinClearance* authority) {
  if (pin_hash.empty() || pin_hash.size() > limits::kFieldValueBytesMax) return Status::invalid("bad PIN hash");
  Op op;
  op.kind = OpKind::kProfile;
  op.member = member;
  op.fields = {{Field::kPinHash, pin_hash}};
  return execute(request_id, op, true, [authority](Op& o, const MemberState* m) -> Result<std::optional<Reply>> {
    return pin_cleared(*m, o, authority, "changing this member's PIN needs the old PIN or an admin");
  });
}

Ledger::PinClearance Ledger::pin_override(const MemberId& member, const std::string& note) {
  PinClearance c;
  c.member_ = member;
  c.note_ = note.empty() ? "pin-override" : note;
  return c;
}

Result<std::optional<Reply>> Ledger::pin_cleared(const MemberState& m, Op& o, const PinClearance* pin,
                                                 const char* needed) {
  const std::string hash = m.field(Field::kPinHash);
  if (hash.empty()) return std::optional<Reply>();  // no PIN to pass
  auto refuse = [](const std::string& message) {
    return std::optional<Reply>(rule_reply({"pin_wrong", message}));
  };
  if (pin == nullptr || pin->member_ != o.member) return refuse(needed);
  if (!pin->note_.empty()) {
    // An operator's override: the receipt says so, for auditors.
    std::string receipt = o.receipt.empty() ? pin->note_ : o.receipt + " | " + pin->note_;
    if (receipt.size() > limits::kReceiptBytesMax) {
      return Status::invalid("receipt and PIN override note are longer than " +
                             std::to_string(limits::kReceiptBytesMax) + " bytes together");
    }
    o.receipt = std::move(receipt);
    return std::optional<Reply>();
  }
  if (pin->hash_ != hash) return refuse("the member's PIN was changed meanwhile; give the new PIN");
  return std::optional<Reply>();
}

Status Ledger::record_pin_failure(const MemberId& member) {
  Op op;
  op.kind = OpKind::kPinFailure;
  op.member = member;
  auto no_check = [](Op&, const MemberState*) -> Result<std::optional<Reply>> { return std::optional<Reply>(); };
  OUTPOST_ASSIGN_OR_RETURN(Reply r, execute("pin-failure-" + new_request_id(), op, true, no_check));
  (void)r;
  return Status::ok();
}

Status Ledger::reset_pin_failures(const MemberId& member) {
  Op op;
  op.kind = OpKind::kProfile;
  op.member = member;
  op.fields = {{Field::kPinReset, sync::id_hex(node_id_)}};
  auto no_check = [](Op&, const MemberState*) -> Result<std::optional<Reply>> { return std::optional<Reply>(); };
  OUTPOST_ASSIGN_OR_RETURN(Reply r, execute("pin-reset-" + new_request_id(), op, true, no_check));
  (void)r;
  return Status::ok();
}

Result<Ledger::PinGate> Ledger::check_pin(const MemberId& member, OpKind purpose, const std::string* pin,
                                          std::uint64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(PinGate gate, pin_gate(member, purpose, pin != nullptr, nullptr, now_ms));
  if (gate.kind == PinGate::Kind::kVerify) {
    const PinVerdict verdict{gate.hash, crypto::verify_pin(gate.hash, *pin)};
    OUTPOST_ASSIGN_OR_RETURN(gate, pin_gate(member, purpose, true, &verdict, now_ms));
  }
  // Invariant: with a verdict for the hash just read, the gate decides.
  OUTPOST_CHECK(gate.kind != PinGate::Kind::kVerify);
  return gate;
}

namespace {
std::string minutes_until(std::uint64_t until_ms, std::uint64_t now_ms) {
  return std::to_string((until_ms - now_ms + 59'999) / 60'000) + " min";
}
}  // namespace

Result<Ledger::PinGate> Ledger::pin_gate(const MemberId& member, OpKind purpose, bool pin_given,
                                         const PinVerdict* verdict, std::uint64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m || !m->fields.count(Field::kCard)) return Status::not_found("unknown member " + sync::id_hex(member));
  PinGate gate;
  auto refuse = [&](const char* code, const std::string& msg) {
    gate.kind = PinGate::Kind::kRefuse;
    gate.refusal = rule_reply({code, msg});
    return gate;
  };
  if (purpose == OpKind::kSpend) {
    Op spend;
    spend.kind = OpKind::kSpend;
    spend.member = member;
    if (auto no = sync::status_refusal(*m, spend)) return refuse(no->code.c_str(), no->message);
  }
  const std::string hash = m->field(Field::kPinHash);
  gate.clearance.member_ = member;
  gate.clearance.hash_ = hash;
  if (hash.empty()) return gate;  // no PIN: pass
  const sync::PinLock lock = sync::pin_lock(*m, now_ms);
  if (lock.locked()) {
    refuse("pin_locked", "wallet spends and PIN changes are locked after " + std::to_string(kPinFailuresMax) +
                             " wrong PINs; try again in " + minutes_until(lock.locked_until_ms, now_ms));
    gate.refusal.body["locked_until_ms"] = lock.locked_until_ms;
    return gate;
  }
  if (!pin_given) {
    return refuse("pin_wrong", purpose == OpKind::kSpend ? "this member's wallet needs a PIN"
                                                         : "changing this member's PIN needs the old PIN");
  }
  if (verdict == nullptr || verdict->hash != hash) {
    gate.kind = PinGate::Kind::kVerify;
    gate.hash = hash;
    return gate;
  }
  if (verdict->match) {
    if (lock.failures != 0) OUTPOST_RETURN_IF_ERROR(reset_pin_failures(member));
    return gate;  // pass
  }
  OUTPOST_RETURN_IF_ERROR(record_pin_failure(member));
  OUTPOST_ASSIGN_OR_RETURN(m, store_->load_member(member));
  const sync::PinLock after = sync::pin_lock(*m, now_ms);
  if (after.locked()) {
    refuse("pin_locked", "wrong PIN; wallet spends and PIN changes are now locked for " +
                             minutes_until(after.locked_until_ms, now_ms));
    gate.refusal.body["locked_until_ms"] = after.locked_until_ms;
    return gate;
  }
  return refuse("pin_wrong", "wrong PIN (" + std::to_string(kPinFailuresMax - static_cast<int>(after.failures)) +
                                 " tries left)");
}

Result<bool> Ledger::has_request(const std::string& request_id) {
  OUTPOST_ASSIGN_OR_RETURN(auto prior, store_->find_request(request_id));
  return prior.has_value();
}

Result<std::string> Ledger::add_terminal(const std::string& name, const std::string& role) {
  OUTPOST_RETURN_IF_ERROR(validate_name(name).with_context("terminal name"));
  if (role != "pos" && role != "admin") return Status::invalid("terminal role must be pos or admin");
  std::array<std::uint8_t, 32> raw{};
  crypto::random_bytes(raw);
  std::string token = "opt_" + crypto::to_hex(raw);
  crypto::wipe(raw);
  storage::Terminal t{name, role, static_cast<std::int64_t>(clock_.now_ms())};
  OUTPOST_RETURN_IF_ERROR(store_->add_terminal(t, crypto::sha256(crypto::view(token))));
  return token;
}

void Ledger::raise_alert(const std::string& kind, const std::string& node, const std::string& message) {
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

void VerifiedSignatures::add(const sync::Hash32& hash, const crypto::PublicKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!by_hash_.emplace(hash, key).second) return;
  order_.push_back(hash);
  while (order_.size() > kEntriesMax) {
    by_hash_.erase(order_.front());
    order_.pop_front();
  }
}

bool VerifiedSignatures::take(const sync::Hash32& hash, const crypto::PublicKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end() || !crypto::ct_equal(it->second, key)) return false;
  by_hash_.erase(it);  // its place in order_ goes when it reaches the front
  return true;
}

Status Ledger::verify_received(const sync::SignedOp& sop, const crypto::PublicKey& key) {
  // An entry of the fast path vouches only for the exact bytes it was made for: the hash is
  // recomputed from the bytes about to be stored, never taken from the op's own `hash` field.
  if (verified_) {
    const sync::Hash32 hash = sync::op_hash(sop.signed_bytes, sop.sig);
    if (crypto::ct_equal(hash, sop.hash) && verified_->take(hash, key)) return Status::ok();
  }
  return sync::verify_op(sop, key);
}

Result<sync::IngestReport> Ledger::ingest(const std::vector<sync::SignedOp>& ops,
                                          const std::optional<sync::NodeId>& from) {
  IngestFindings found;
  auto report = ingest_batch(ops, found);
  // Recorded after the batch's savepoint rolled back, so they survive the refusal. A bad
  // signature is the sender's doing (the origin's key did not sign those bytes): the alert
  // names the sender, and the op only in its message.
  if (!report.is_ok() && found.bad_signature) {
    raise_alert("bad_signature", from ? sync::id_hex(*from) : "",
                "batch refused: " + report.status().message());
  }
  if (found.own_seq_proven > 0) {
    const std::string why = "a peer delivered this node's own op seq " +
                            std::to_string(found.own_seq_proven) + ", correctly signed";
    OUTPOST_RETURN_IF_ERROR(raise_own_seq_floor(found.own_seq_proven, why));
  }
  if (report.is_ok()) OUTPOST_RETURN_IF_ERROR(lift_restore_wait_if_met());
  return report;
}

Result<sync::IngestReport> Ledger::ingest_batch(const std::vector<sync::SignedOp>& ops,
                                                IngestFindings& found) {
  OUTPOST_ASSIGN_OR_RETURN(storage::Savepoint sp, storage::Savepoint::begin(store_->db()));
  sync::IngestReport report;
  sync::Hlc newest{};
  std::vector<sync::SignedOp> evidence;
  std::set<NodeId> forked;  // origins shown to equivocate by this batch
  for (const auto& sop : ops) {
    const Op& op = sop.op;
    const std::string ref = sync::op_ref_string(op.origin, op.seq);
    if (forked.count(op.origin)) continue;  // the rest of a conflicting history: never applied
    OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(op.origin));
    // The held op's hash at a seq, for the rule's duplicate test (a read error fails the batch).
    Status read = Status::ok();
    const sync::HeldHash held = [&](std::uint64_t seq) -> std::optional<sync::Hash32> {
      auto got = store_->get_op(op.origin, seq);
      if (!got.is_ok()) read = got.status();
      if (!got.is_ok() || !*got) return std::nullopt;
      return (*got)->hash;
    };
    const sync::SignatureCheck check = [&](const crypto::PublicKey& key) {
      return verify_received(sop, key);
    };
    const sync::LogHead log_head{head.seq, head.hash};
    sync::LogRuling ruling =
        sync::judge_op(log_head, trust_in(*this, op.origin), op, sop.hash, held, check);
    if (ruling.verdict == sync::LogVerdict::kUnknownOrigin) {
      // A node enrolled after this daemon started is in the database's roster, not yet in ours.
      OUTPOST_ASSIGN_OR_RETURN(bool changed, refresh_roster());
      if (changed)
        ruling = sync::judge_op(log_head, trust_in(*this, op.origin), op, sop.hash, held, check);
    }
    OUTPOST_RETURN_IF_ERROR(read);
    // An op of our own origin at the next seq whose signature verified (applied, revoked or
    // forked) proves the chain holds that seq.
    if (op.origin == node_id_ && (ruling.verdict == sync::LogVerdict::kApply ||
                                  ruling.verdict == sync::LogVerdict::kRevoked ||
                                  ruling.verdict == sync::LogVerdict::kFork)) {
      found.own_seq_proven = std::max(found.own_seq_proven, op.seq);
    }
    switch (ruling.verdict) {
      case sync::LogVerdict::kApply:
        break;
      case sync::LogVerdict::kDuplicate:
        report.duplicates++;
        continue;
      case sync::LogVerdict::kEquivocation:
      case sync::LogVerdict::kFork:
        // Evidence, not a bad peer: skipping this origin instead of refusing the batch keeps the
        // other origins' ops flowing between honest nodes holding different forks.
        evidence.push_back(sop);
        report.equivocations.push_back(
            ruling.verdict == sync::LogVerdict::kEquivocation
                ? "origin " + sync::id_hex(op.origin) + " signed two different ops with seq " +
                      std::to_string(op.seq)
                : "origin " + sync::id_hex(op.origin) + " signed op seq " + std::to_string(op.seq) +
                      " on top of another op than the held seq " + std::to_string(head.seq));
        forked.insert(op.origin);
        continue;
      case sync::LogVerdict::kUnknownOrigin:
      case sync::LogVerdict::kBadSignature:
        found.bad_signature = ruling.verdict == sync::LogVerdict::kBadSignature;
        if (ruling.at_held_seq) {
          return Status::corruption("op " + ref +
                                    " conflicts with the held op and has a bad signature");
        }
        if (!found.bad_signature)
          return Status::corruption("op " + ref + " is from an unknown origin");
        return ruling.signature;
      case sync::LogVerdict::kGap:
        // Our own op beyond a gap, correctly signed: we did sign that seq (restored from an older
        // copy), so it must not be signed again. Proof, unlike a HELLO's claim.
        if (op.origin == node_id_ && sync::verify_op(sop, key_.public_key()).is_ok()) {
          found.own_seq_proven = std::max(found.own_seq_proven, op.seq);
        }
        return Status::corruption("op " + ref + " leaves a gap after seq " +
                                  std::to_string(head.seq));
      case sync::LogVerdict::kRevoked:
        return Status::corruption("op " + ref + " is past its origin's revocation cut-off");
      case sync::LogVerdict::kMalformed:
        return Status::corruption(
            "op " + ref + " is malformed (seq 0, or a genesis op that names a previous op)");
    }
    OUTPOST_RETURN_IF_ERROR(store_->append_op(sop));
    if (op.origin == node_id_ && !op.request_id.empty()) {
      // One of this node's own ops, given back by a peer after a restore: a POS that retries
      // its request must get it as a replay, never a second execution.
      OUTPOST_ASSIGN_OR_RETURN(auto prior, store_->find_request(op.request_id));
      if (!prior) OUTPOST_RETURN_IF_ERROR(store_->put_request(op.request_id, node_id_, op.seq, recovered_answer(sop).dump()));
    }
    report.applied++;
    if (op.hlc > newest) newest = op.hlc;
  }
  if (report.applied > 0) {
    OUTPOST_ASSIGN_OR_RETURN(auto hlc_text, store_->get_meta("hlc"));
    sync::HlcClock hlc;
    if (hlc_text) {
      OUTPOST_ASSIGN_OR_RETURN(sync::Hlc last, parse_hlc(*hlc_text));
      hlc = sync::HlcClock(last);
    }
    hlc.observe(newest, 0);
    OUTPOST_RETURN_IF_ERROR(store_->set_meta("hlc", hlc.last().to_string()));
  }
  OUTPOST_RETURN_IF_ERROR(sp.release());
  // Evidence and alerts are recorded outside the all-or-nothing unit (they happen even when
  // nothing else in the batch applied).
  for (const auto& e : evidence) {
    OUTPOST_ASSIGN_OR_RETURN(bool fresh, store_->add_equivocation(e, static_cast<std::int64_t>(clock_.now_ms())));
    if (!fresh) continue;  // the same evidence again (a peer re-sending it): one alert is enough
    raise_alert("equivocation", sync::id_hex(e.op.origin),
                "two different ops signed for seq " + std::to_string(e.op.seq));
  }
  return report;
}

Status Ledger::check_fence(std::uint64_t own_head_seq) const {
  if (awaiting_peer_) {
    return Status::unavailable(
        "this node was restored from a backup and signs no op until it has heard from " +
        std::string(is_hq_ ? "a peer" : "HQ") +
        " which of its own ops the chain already holds (it must not reuse a seq); connect it, or see "
        "docs/operations.md \"Backup and restore\"");
  }
  if (own_head_seq < own_seq_floor_) {
    return Status::unavailable("a peer holds this node's own ops up to seq " + std::to_string(own_seq_floor_) +
                               " but this node holds only " + std::to_string(own_head_seq) +
                               " (restored from an older copy?); it signs no op until it has received them");
  }
  return Status::ok();
}

Status Ledger::observe_peer_hello(const std::string& peer_name, bool peer_is_hq, std::uint64_t own_seq_at_peer) {
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  // A HELLO's vector is only a claim. HQ's (by its authenticated certificate) fences a store.
  // No store's claim fences anyone, HQ included: a rogue store could claim seqs it can never
  // deliver and stop a node for good. The ops themselves, correctly signed, fence (ingest).
  if (peer_is_hq && own_seq_at_peer > own_seq_floor_) {
    OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaOwnSeqFloor, std::to_string(own_seq_at_peer)));
    own_seq_floor_ = own_seq_at_peer;
  }
  if (own_seq_at_peer > head.seq) {
    raise_alert("own_seq_behind", sync::id_hex(node_id_),
                peer_name + " says it holds this node's ops up to seq " + std::to_string(own_seq_at_peer) +
                    ", this node only up to " + std::to_string(head.seq) +
                    (peer_is_hq
                         ? ": restored from an older copy? It signs nothing until it has them back"
                         : ": restored from an older copy, or a false claim (not HQ: fenced only "
                           "once it delivers them)"));
    log(LogLevel::kWarn, "a peer holds more of this node's own ops",
        {{"peer", peer_name}, {"peer_seq", std::to_string(own_seq_at_peer)}, {"own_seq", std::to_string(head.seq)},
         {"fenced", peer_is_hq ? "yes" : "no"}});
  }
  if (!awaiting_peer_) return Status::ok();
  if (!peer_is_hq && !is_hq_) return Status::ok();  // a store waits for HQ itself
  if (!peer_is_hq && own_seq_at_peer > head.seq) {
    // HQ restored: this peer holds more of HQ's ops. Wait until sync brought them back, so that
    // a false claim cannot end the wait (nor hold it: another peer's claim may end it).
    if (restore_claims_.size() < limits::kRosterNodesMax || restore_claims_.count(peer_name)) {
      restore_claims_[peer_name] = own_seq_at_peer;
    }
    return Status::ok();
  }
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaAwaitingPeer, "0"));
  awaiting_peer_ = false;
  restore_claims_.clear();
  log(LogLevel::kInfo, "restored node heard from a peer which of its own ops the chain holds",
      {{"peer", peer_name},
       {"peer_seq", std::to_string(own_seq_at_peer)},
       {"own_seq", std::to_string(head.seq)}});
  return Status::ok();
}

Status Ledger::lift_restore_wait_if_met() {
  if (!awaiting_peer_ || restore_claims_.empty()) return Status::ok();
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  for (const auto& [peer, claim] : restore_claims_) {
    if (claim > head.seq) continue;
    OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaAwaitingPeer, "0"));
    awaiting_peer_ = false;
    log(LogLevel::kInfo, "restored node got back its own ops a peer held",
        {{"peer", peer}, {"own_seq", std::to_string(head.seq)}});
    restore_claims_.clear();
    break;
  }
  return Status::ok();
}

Status Ledger::raise_own_seq_floor(std::uint64_t seq, const std::string& why) {
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  if (seq <= head.seq || seq <= own_seq_floor_) return Status::ok();
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaOwnSeqFloor, std::to_string(seq)));
  own_seq_floor_ = seq;
  raise_alert("own_seq_behind", sync::id_hex(node_id_),
              why + ", this node only up to " + std::to_string(head.seq) +
                  ": restored from an older copy? It signs nothing until it has them back");
  log(LogLevel::kWarn, "a peer delivered own ops this node does not hold",
      {{"own_seq_proven", std::to_string(seq)},
       {"own_seq", std::to_string(head.seq)},
       {"fenced", "yes"}});
  return Status::ok();
}

Result<Json> Ledger::fence_json() {
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  Status st = check_fence(head.seq);
  return Json{{"fenced", !st.is_ok()},
              {"awaiting_peer", awaiting_peer_},
              {"own_seq", head.seq},
              {"own_seq_floor", own_seq_floor_},
              {"reason", st.is_ok() ? "" : st.message()}};
}

Result<Json> Ledger::release_fence() {
  OUTPOST_ASSIGN_OR_RETURN(Json before, fence_json());
  OUTPOST_ASSIGN_OR_RETURN(storage::Transaction txn, store_->begin());
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaAwaitingPeer, "0"));
  OUTPOST_RETURN_IF_ERROR(store_->set_meta(kMetaOwnSeqFloor, "0"));
  OUTPOST_RETURN_IF_ERROR(txn.commit());
  awaiting_peer_ = false;
  own_seq_floor_ = 0;
  return before;
}

Status Ledger::mark_restored(storage::Store& store) { return store.set_meta(kMetaAwaitingPeer, "1"); }

Result<std::vector<std::string>> Ledger::rebalance(sync::MemberId* cursor, std::size_t members_max,
                                                   std::uint64_t now_ms, const sync::RebalancePolicy& policy) {
  // How far back a member's ops are read to find where they shop: the newest ones decide.
  constexpr std::size_t kRecentOpsRead = 64;
  std::vector<std::string> moved;
  OUTPOST_ASSIGN_OR_RETURN(auto members, store_->members_with_balances_after(*cursor, members_max));
  *cursor = members.size() < members_max ? MemberId{} : members.back();  // wrap after the last page
  if (!signing_allowed().is_ok()) return moved;
  for (const MemberId& member : members) {
    OUTPOST_ASSIGN_OR_RETURN(auto state, store_->load_member(member));
    if (!state) continue;
    if (state->points.rights(node_id_) <= 0 && state->wallet.rights(node_id_) <= 0) continue;
    OUTPOST_ASSIGN_OR_RETURN(auto recent, store_->ops_of_member(member, kRecentOpsRead));
    std::map<NodeId, std::uint64_t> last_seen;
    for (const auto& sop : recent) {
      if (sop.op.kind == OpKind::kMove) continue;  // rights moving is not the member shopping
      auto& t = last_seen[sop.op.origin];
      t = std::max(t, sop.op.hlc.wall_ms);
    }
    for (Account account : {Account::kPoints, Account::kWallet}) {
      auto plan = sync::plan_rebalance(counter_of(*state, account), node_id_, last_seen, now_ms, policy);
      if (!plan) continue;
      auto r = move_rights("rebalance-" + new_request_id(), member, account, plan->amount, plan->to);
      if (!r.is_ok()) {
        if (r.status().code() == Code::kUnavailable) return moved;  // fenced: try again later
        return r.status();
      }
      if (r->refused) continue;
      moved.push_back(std::string(sync::account_name(account)) + " " + std::to_string(plan->amount) + " of member " +
                      sync::id_hex(member) + " to " + sync::id_hex(plan->to));
      OUTPOST_ASSIGN_OR_RETURN(state, store_->load_member(member));
    }
  }
  return moved;
}

Result<std::uint64_t> Ledger::grant_rights(const NodeId& to, const MemberId& member, Account account,
                                           std::uint64_t amount) {
  if (account != Account::kPoints && account != Account::kWallet) return Status::invalid("bad account");
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m) return std::uint64_t{0};
  std::int64_t here = counter_of(*m, account).rights(node_id_);
  if (here <= 0) return std::uint64_t{0};
  std::uint64_t give = std::min<std::uint64_t>(amount, static_cast<std::uint64_t>(here));
  OUTPOST_ASSIGN_OR_RETURN(Reply r, move_rights("grant-" + new_request_id(), member, account, give, to));
  if (r.refused) return std::uint64_t{0};
  return give;
}

}  // namespace outpost::node
