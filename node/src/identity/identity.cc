// Key files, enrollment (request -> certificate -> install), revocation and stored rosters.
// The flow and the files are described in docs/security.md.
#include "outpost/node/identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "outpost/base/limits.h"
#include "outpost/crypto/hex.h"

namespace outpost::node {

namespace fs = std::filesystem;
using sync::Bytes;
using sync::NodeId;

namespace {

constexpr const char* kMetaNetworkId = "network_id";
constexpr const char* kMetaRootKey = "root_public_key";
constexpr const char* kMetaCertificate = "certificate";
constexpr const char* kMetaNoiseKey = "noise_public_key";
constexpr const char* kRequestFormat = "outpost-enroll-request";
constexpr const char* kEnrollmentFormat = "outpost-enrollment";
constexpr int kFileVersion = 1;
// Domain separation of the enrollment request's self-signature.
constexpr std::array<std::uint8_t, 4> kRequestMagic = {'O', 'P', 'R', 'Q'};

std::string join(const std::string& dir, const char* file) {
  return (fs::path(dir) / file).string();
}

Result<std::unique_ptr<storage::Store>> open_store(const std::string& dir) { return open_data_dir_store(dir); }

using crypto::hex_array;

// Returns the string member `key` of a JSON object, or kInvalidArgument naming it.
Result<std::string> json_string(const Json& j, const char* key, const std::string& what) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
    return Status::invalid(what + ": missing string field '" + key + "'");
  }
  return j[key].get<std::string>();
}

Status check_format(const Json& j, const char* format, const std::string& what) {
  if (!j.is_object() || !j.contains("format") || j["format"] != format) {
    return Status::invalid(what + " is not an " + format + " file");
  }
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"] != kFileVersion) {
    return Status::unsupported(what + ": unsupported version (this binary reads version " +
                               std::to_string(kFileVersion) + ")");
  }
  return Status::ok();
}

Result<std::string> required_meta(storage::Store& store, const char* key) {
  OUTPOST_ASSIGN_OR_RETURN(auto v, store.get_meta(key));
  if (!v) return Status::corruption(std::string("database has no '") + key + "' entry");
  return *v;
}

Result<NodeId> own_node_id(storage::Store& store) {
  OUTPOST_ASSIGN_OR_RETURN(std::string hex, required_meta(store, "node_id"));
  auto id = sync::parse_id(hex);
  if (!id.is_ok()) return Status::corruption("stored node id is damaged");
  return *id;
}

Bytes request_signed_bytes(const NodeId& id, const crypto::PublicKey& signing,
                           const crypto::PublicKey& noise, const std::string& name) {
  sync::ByteWriter w;
  w.raw(kRequestMagic);
  w.u8(kFileVersion);
  w.raw(id);
  w.raw(signing);
  w.raw(noise);
  w.str16(name);
  return w.take();
}

std::string request_fingerprint(const Bytes& signed_bytes) {
  crypto::Hash32 h = crypto::sha256(signed_bytes);
  return crypto::to_hex(crypto::ByteView(h.data(), 8));
}

Status check_valid_days(std::uint32_t days) {
  if (days == 0 || days > limits::kCertificateValidDaysMax) {
    return Status::invalid("--valid-days must be 1 to " +
                           std::to_string(limits::kCertificateValidDaysMax));
  }
  return Status::ok();
}

sync::Certificate new_certificate(const TrustAnchors& anchors, const NodeId& id,
                                  const std::string& name, sync::NodeRole role,
                                  const crypto::PublicKey& signing, const crypto::PublicKey& noise,
                                  std::uint32_t valid_days, std::uint64_t now_ms) {
  sync::Certificate c;
  c.network_id = anchors.network_id;
  c.node_id = id;
  c.role = role;
  c.name = name;
  c.signing_key = signing;
  c.noise_key = noise;
  c.valid_from_ms = now_ms > kCertificateBackdateMs ? now_ms - kCertificateBackdateMs : 0;
  c.valid_until_ms = now_ms + std::uint64_t{valid_days} * 86'400'000ULL;
  return c;
}

Json roster_file_json(const storage::StoredRoster& r) {
  return Json{
      {"version", r.version}, {"body", crypto::to_hex(r.body)}, {"sig", crypto::to_hex(r.sig)}};
}

// HQ side: the open store of an HQ dir, its anchors and the root key (checked against them).
struct HqAuthority {
  std::unique_ptr<storage::Store> store;
  TrustAnchors anchors;
  std::optional<crypto::SigningKey> root;
  std::shared_ptr<const sync::Roster> roster;
};

Result<HqAuthority> open_authority(const std::string& hq_dir) {
  HqAuthority hq;
  OUTPOST_ASSIGN_OR_RETURN(hq.store, open_store(hq_dir));
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(*hq.store));
  if (!anchors) {
    return Status::invalid(hq_dir + " is not an HQ data dir (run: outpost hq init --data " +
                           hq_dir + " --name NAME)");
  }
  hq.anchors = *anchors;
  auto seed = crypto::read_key_file(join(hq_dir, kRootKeyFile), kRootKeyKind);
  if (!seed.is_ok()) {
    return seed.status().with_context("the HQ root key (" + join(hq_dir, kRootKeyFile) +
                                      ") is needed to sign certificates and rosters");
  }
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey root, crypto::SigningKey::from_seed(seed->view()));
  if (!crypto::ct_equal(root.public_key(), hq.anchors.root_key)) {
    return Status::permission(join(hq_dir, kRootKeyFile) +
                              " is not the root key this network pins");
  }
  hq.root.emplace(std::move(root));
  OUTPOST_ASSIGN_OR_RETURN(hq.roster, load_roster(*hq.store, hq.anchors));
  if (!hq.roster) return Status::corruption("HQ data dir has no roster");
  return hq;
}

// Signs `next` (version and issue time set here) and stores it. Returns the stored form.
Result<storage::StoredRoster> publish_roster(HqAuthority& hq, sync::Roster next,
                                             std::uint64_t now_ms) {
  next.version = hq.roster->version + 1;
  next.issued = sync::Hlc{now_ms, 0};
  OUTPOST_RETURN_IF_ERROR(sync::validate_roster(next));
  OUTPOST_RETURN_IF_ERROR(sync::check_roster_successor(*hq.roster, next));
  sync::SignedRoster signed_roster = sync::sign_roster(next, *hq.root);
  OUTPOST_RETURN_IF_ERROR(
      hq.store->put_roster(next.version, signed_roster.body, signed_roster.sig));
  return storage::StoredRoster{next.version, std::move(signed_roster.body), signed_roster.sig};
}

std::string status_at(const sync::Roster& roster, const sync::SignedCertificate& sc,
                      std::uint64_t now_ms) {
  if (roster.is_revoked(sc.cert.node_id)) return "revoked";
  if (now_ms >= sc.cert.valid_until_ms) return "expired";
  if (now_ms < sc.cert.valid_from_ms) return "not_yet_valid";
  return "active";
}

}  // namespace

std::string certificate_to_hex(const sync::SignedCertificate& sc) {
  sync::ByteWriter w;
  sync::write_signed_certificate(w, sc);
  return crypto::to_hex(w.bytes());
}

Result<sync::SignedCertificate> certificate_from_hex(const std::string& hex) {
  auto bytes = crypto::from_hex(hex);
  if (!bytes.is_ok()) return Status::invalid("certificate is not hex");
  sync::ByteReader r(*bytes);
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedCertificate sc, sync::read_signed_certificate(r));
  if (!r.at_end()) return Status::corruption("trailing bytes after certificate");
  return sc;
}

Status ensure_noise_key(const std::string& dir, storage::Store& store) {
  const std::string path = join(dir, kNoiseKeyFile);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    crypto::X25519KeyPair key = crypto::X25519KeyPair::generate();
    OUTPOST_RETURN_IF_ERROR(crypto::write_key_file(path, kNoiseKeyKind, key.private_key()));
    return store.set_meta(kMetaNoiseKey, crypto::to_hex(key.public_key()));
  }
  OUTPOST_ASSIGN_OR_RETURN(crypto::X25519KeyPair key, read_noise_key(dir));
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store.get_meta(kMetaNoiseKey));
  if (stored && *stored != crypto::to_hex(key.public_key())) {
    return Status::corruption(path + " does not belong to this node");
  }
  if (!stored) return store.set_meta(kMetaNoiseKey, crypto::to_hex(key.public_key()));
  return Status::ok();
}

Result<crypto::X25519KeyPair> read_noise_key(const std::string& dir) {
  OUTPOST_ASSIGN_OR_RETURN(crypto::SecretBytes secret,
                           crypto::read_key_file(join(dir, kNoiseKeyFile), kNoiseKeyKind));
  return crypto::X25519KeyPair::from_private(secret.view());
}

Result<std::optional<TrustAnchors>> load_trust_anchors(storage::Store& store) {
  OUTPOST_ASSIGN_OR_RETURN(auto network_hex, store.get_meta(kMetaNetworkId));
  OUTPOST_ASSIGN_OR_RETURN(auto root_hex, store.get_meta(kMetaRootKey));
  if (!network_hex && !root_hex) return std::optional<TrustAnchors>();
  if (!network_hex || !root_hex)
    return Status::corruption("database has half of its trust anchors");
  TrustAnchors a;
  auto network = hex_array<16>(*network_hex, "stored network id");
  auto root = hex_array<32>(*root_hex, "stored root key");
  if (!network.is_ok() || !root.is_ok())
    return Status::corruption("stored trust anchors are damaged");
  a.network_id = *network;
  a.root_key = *root;
  return std::optional<TrustAnchors>(a);
}

Result<std::shared_ptr<const sync::Roster>> load_roster(storage::Store& store,
                                                        const TrustAnchors& anchors) {
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store.latest_roster());
  if (!stored) return std::shared_ptr<const sync::Roster>();
  // Every certificate was checked when this roster was accepted; its own signature still
  // covers every byte, so checking that one is enough here.
  auto verified = sync::verify_roster(stored->body, stored->sig, anchors.root_key,
                                      anchors.network_id, /*check_certificate_signatures=*/false);
  if (!verified.is_ok()) {
    return Status::corruption("stored roster v" + std::to_string(stored->version) +
                              " fails verification: " + verified.status().message());
  }
  if (verified->roster.version != stored->version) {
    return Status::corruption("stored roster version does not match its body");
  }
  return std::make_shared<const sync::Roster>(std::move(verified->roster));
}

Result<std::shared_ptr<const sync::Roster>> accept_roster(storage::Store& store,
                                                          const TrustAnchors& anchors,
                                                          sync::ByteView body, sync::ByteView sig) {
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedRoster offered,
                           sync::verify_roster(body, sig, anchors.root_key, anchors.network_id));
  OUTPOST_ASSIGN_OR_RETURN(auto current, load_roster(store, anchors));
  if (current) OUTPOST_RETURN_IF_ERROR(sync::check_roster_successor(*current, offered.roster));
  OUTPOST_RETURN_IF_ERROR(store.put_roster(offered.roster.version, offered.body, offered.sig));
  return std::make_shared<const sync::Roster>(std::move(offered.roster));
}

Result<std::optional<sync::SignedRules>> load_signed_rules(storage::Store& store, const TrustAnchors& anchors) {
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store.latest_rules());
  if (!stored) return std::optional<sync::SignedRules>();
  auto verified = sync::verify_rules(stored->body, stored->sig, anchors.root_key, anchors.network_id);
  if (!verified.is_ok()) {
    return Status::corruption("stored program rules v" + std::to_string(stored->version) +
                              " fail verification: " + verified.status().message());
  }
  if (verified->rules.version != stored->version) {
    return Status::corruption("stored program rules are filed under v" + std::to_string(stored->version) +
                              " but say v" + std::to_string(verified->rules.version));
  }
  return std::optional<sync::SignedRules>(std::move(verified).value());
}

Result<sync::SignedRules> accept_rules(storage::Store& store, const TrustAnchors& anchors, sync::ByteView body,
                                       sync::ByteView sig) {
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedRules offered,
                           sync::verify_rules(body, sig, anchors.root_key, anchors.network_id));
  OUTPOST_ASSIGN_OR_RETURN(auto current, store.latest_rules());
  if (current && offered.rules.version <= current->version) {
    return Status::refused("rules v" + std::to_string(offered.rules.version) + " are not newer than the held v" +
                           std::to_string(current->version));
  }
  OUTPOST_RETURN_IF_ERROR(store.put_rules(offered.rules.version, offered.body, offered.sig));
  return offered;
}

Result<Json> hq_set_rules(const std::string& hq_dir, const std::string& rules_file, sync::Clock& clock) {
  OUTPOST_ASSIGN_OR_RETURN(sync::ProgramRules rules, load_rules_file(rules_file));
  OUTPOST_ASSIGN_OR_RETURN(HqAuthority hq, open_authority(hq_dir));
  OUTPOST_ASSIGN_OR_RETURN(auto current, hq.store->latest_rules());
  if (current && rules.version <= current->version) {
    return Status::invalid("rules file " + rules_file + " has version " + std::to_string(rules.version) +
                           ", but HQ already issued v" + std::to_string(current->version) +
                           "; raise 'version' in the file");
  }
  sync::SignedRules signed_rules = sync::sign_rules(rules, hq.anchors.network_id, clock.now_ms(), *hq.root);
  OUTPOST_RETURN_IF_ERROR(hq.store->put_rules(rules.version, signed_rules.body, signed_rules.sig));
  Json tiers = Json::array();
  for (const auto& t : rules.tiers) {
    tiers.push_back({{"name", t.name}, {"threshold_minor", t.threshold_minor}, {"points_per_unit", t.points_per_unit}});
  }
  return Json{{"version", rules.version},
              {"issued_ms", signed_rules.issued_ms},
              {"unit_minor", rules.unit_minor},
              {"window_months", rules.window_months},
              {"tiers", tiers}};
}

Result<NodeIdentity> load_identity(const std::string& dir, storage::Store& store) {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(store));
  OUTPOST_ASSIGN_OR_RETURN(auto cert_hex, store.get_meta(kMetaCertificate));
  if (!anchors || !cert_hex) {
    return Status::not_found("this node is not enrolled (see docs/security.md, \"Enrollment\")");
  }
  NodeIdentity id;
  id.network_id = anchors->network_id;
  id.root_key = anchors->root_key;
  auto cert = certificate_from_hex(*cert_hex);
  if (!cert.is_ok()) return Status::corruption("stored certificate is damaged");
  id.certificate = std::move(cert).value();
  OUTPOST_ASSIGN_OR_RETURN(crypto::X25519KeyPair noise, read_noise_key(dir));
  if (!crypto::ct_equal(noise.public_key(), id.certificate.cert.noise_key)) {
    return Status::corruption(join(dir, kNoiseKeyFile) +
                              " is not the Noise key this node's certificate names");
  }
  id.noise_key = std::make_shared<const crypto::X25519KeyPair>(std::move(noise));
  return id;
}

Result<Json> hq_init(const std::string& dir, const std::string& name, std::uint32_t valid_days,
                     sync::Clock& clock) {
  OUTPOST_RETURN_IF_ERROR(check_valid_days(valid_days));
  std::error_code ec;
  if (fs::exists(join(dir, kRootKeyFile), ec)) {
    return Status::invalid(dir + " already holds a root key");
  }
  InitOptions options;
  options.name = name;
  options.role = "hq";
  OUTPOST_RETURN_IF_ERROR(Ledger::init(dir, options));
  OUTPOST_ASSIGN_OR_RETURN(auto store, open_store(dir));
  OUTPOST_ASSIGN_OR_RETURN(NodeId node_id, own_node_id(*store));
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey node_key,
                           crypto::read_signing_key(join(dir, kSigningKeyFile)));
  OUTPOST_ASSIGN_OR_RETURN(crypto::X25519KeyPair noise, read_noise_key(dir));

  TrustAnchors anchors;
  crypto::random_bytes(anchors.network_id);
  crypto::SigningKey root = crypto::SigningKey::generate();
  anchors.root_key = root.public_key();
  OUTPOST_RETURN_IF_ERROR(
      crypto::write_key_file(join(dir, kRootKeyFile), kRootKeyKind, root.seed()));

  const std::uint64_t now_ms = clock.now_ms();
  sync::SignedCertificate cert = sync::sign_certificate(
      new_certificate(anchors, node_id, name, sync::NodeRole::kHq, node_key.public_key(),
                      noise.public_key(), valid_days, now_ms),
      root);
  sync::Roster roster;
  roster.network_id = anchors.network_id;
  roster.version = 1;
  roster.issued = sync::Hlc{now_ms, 0};
  OUTPOST_RETURN_IF_ERROR(roster.put_certificate(cert));
  sync::SignedRoster signed_roster = sync::sign_roster(roster, root);

  OUTPOST_ASSIGN_OR_RETURN(storage::Transaction txn, store->begin());
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaNetworkId, crypto::to_hex(anchors.network_id)));
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaRootKey, crypto::to_hex(anchors.root_key)));
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaCertificate, certificate_to_hex(cert)));
  OUTPOST_RETURN_IF_ERROR(store->put_roster(1, signed_roster.body, signed_roster.sig));
  OUTPOST_RETURN_IF_ERROR(txn.commit());
  return Json{{"node_id", sync::id_hex(node_id)},
              {"name", name},
              {"role", "hq"},
              {"network_id", crypto::to_hex(anchors.network_id)},
              {"root_public_key", crypto::to_hex(anchors.root_key)},
              {"root_fingerprint", sync::key_fingerprint(anchors.root_key)},
              {"root_key_file", join(dir, kRootKeyFile)},
              {"roster_version", 1},
              {"valid_until_ms", cert.cert.valid_until_ms}};
}

Result<Json> make_enroll_request(const std::string& dir) {
  OUTPOST_ASSIGN_OR_RETURN(auto store, open_store(dir));
  OUTPOST_ASSIGN_OR_RETURN(NodeId node_id, own_node_id(*store));
  OUTPOST_ASSIGN_OR_RETURN(std::string name, required_meta(*store, "node_name"));
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey key,
                           crypto::read_signing_key(join(dir, kSigningKeyFile)));
  OUTPOST_RETURN_IF_ERROR(ensure_noise_key(dir, *store));
  OUTPOST_ASSIGN_OR_RETURN(crypto::X25519KeyPair noise, read_noise_key(dir));
  const Bytes signed_bytes =
      request_signed_bytes(node_id, key.public_key(), noise.public_key(), name);
  return Json{{"format", kRequestFormat},
              {"version", kFileVersion},
              {"node_id", sync::id_hex(node_id)},
              {"name", name},
              {"signing_key", crypto::to_hex(key.public_key())},
              {"noise_key", crypto::to_hex(noise.public_key())},
              {"signature", crypto::to_hex(key.sign(signed_bytes))},
              {"fingerprint", request_fingerprint(signed_bytes)}};
}

Result<Json> hq_enroll(const std::string& hq_dir, const std::string& name, sync::NodeRole role,
                       const Json& request, std::uint32_t valid_days, sync::Clock& clock) {
  OUTPOST_RETURN_IF_ERROR(check_valid_days(valid_days));
  OUTPOST_RETURN_IF_ERROR(validate_name(name).with_context("node name"));
  const std::string what = "enrollment request";
  OUTPOST_RETURN_IF_ERROR(check_format(request, kRequestFormat, what));
  OUTPOST_ASSIGN_OR_RETURN(std::string id_hex, json_string(request, "node_id", what));
  OUTPOST_ASSIGN_OR_RETURN(std::string req_name, json_string(request, "name", what));
  OUTPOST_ASSIGN_OR_RETURN(std::string signing_hex, json_string(request, "signing_key", what));
  OUTPOST_ASSIGN_OR_RETURN(std::string noise_hex, json_string(request, "noise_key", what));
  OUTPOST_ASSIGN_OR_RETURN(std::string sig_hex, json_string(request, "signature", what));
  OUTPOST_ASSIGN_OR_RETURN(NodeId node_id, hex_array<16>(id_hex, what + " node_id"));
  OUTPOST_ASSIGN_OR_RETURN(crypto::PublicKey signing,
                           hex_array<32>(signing_hex, what + " signing_key"));
  OUTPOST_ASSIGN_OR_RETURN(crypto::PublicKey noise, hex_array<32>(noise_hex, what + " noise_key"));
  OUTPOST_ASSIGN_OR_RETURN(crypto::Signature sig, hex_array<64>(sig_hex, what + " signature"));
  if (req_name.size() > limits::kNameBytesMax) return Status::invalid(what + ": name too long");
  const Bytes signed_bytes = request_signed_bytes(node_id, signing, noise, req_name);
  if (!crypto::verify(signing, signed_bytes, sig)) {
    return Status::invalid(what + " is not signed by the key it names (damaged or forged)");
  }

  OUTPOST_ASSIGN_OR_RETURN(HqAuthority hq, open_authority(hq_dir));
  const std::uint64_t now_ms = clock.now_ms();
  sync::Certificate cert_fields =
      new_certificate(hq.anchors, node_id, name, role, signing, noise, valid_days, now_ms);
  OUTPOST_RETURN_IF_ERROR(sync::validate_certificate(cert_fields).with_context(what));
  if (hq.roster->is_revoked(node_id)) {
    return Status::invalid("node " + id_hex + " is revoked; enroll a new node instead");
  }
  sync::SignedCertificate cert = sync::sign_certificate(cert_fields, *hq.root);
  sync::Roster next = *hq.roster;
  OUTPOST_RETURN_IF_ERROR(next.put_certificate(cert));
  OUTPOST_ASSIGN_OR_RETURN(storage::StoredRoster stored,
                           publish_roster(hq, std::move(next), now_ms));
  return Json{{"format", kEnrollmentFormat},
              {"version", kFileVersion},
              {"network_id", crypto::to_hex(hq.anchors.network_id)},
              {"root_public_key", crypto::to_hex(hq.anchors.root_key)},
              {"root_fingerprint", sync::key_fingerprint(hq.anchors.root_key)},
              {"node_id", id_hex},
              {"name", name},
              {"role", sync::role_name(role)},
              {"request_fingerprint", request_fingerprint(signed_bytes)},
              {"valid_until_ms", cert.cert.valid_until_ms},
              {"certificate", certificate_to_hex(cert)},
              {"roster", roster_file_json(stored)}};
}

Result<Json> install_enrollment(const std::string& dir, const Json& enrollment) {
  const std::string what = "enrollment file";
  OUTPOST_RETURN_IF_ERROR(check_format(enrollment, kEnrollmentFormat, what));
  OUTPOST_ASSIGN_OR_RETURN(std::string network_hex, json_string(enrollment, "network_id", what));
  OUTPOST_ASSIGN_OR_RETURN(std::string root_hex, json_string(enrollment, "root_public_key", what));
  OUTPOST_ASSIGN_OR_RETURN(std::string cert_hex, json_string(enrollment, "certificate", what));
  if (!enrollment.contains("roster")) return Status::invalid(what + ": missing 'roster'");
  const Json& rj = enrollment["roster"];
  OUTPOST_ASSIGN_OR_RETURN(std::string body_hex, json_string(rj, "body", what + " roster"));
  OUTPOST_ASSIGN_OR_RETURN(std::string rsig_hex, json_string(rj, "sig", what + " roster"));
  TrustAnchors anchors;
  OUTPOST_ASSIGN_OR_RETURN(anchors.network_id, hex_array<16>(network_hex, what + " network_id"));
  OUTPOST_ASSIGN_OR_RETURN(anchors.root_key, hex_array<32>(root_hex, what + " root_public_key"));
  auto body = crypto::from_hex(body_hex);
  auto rsig = crypto::from_hex(rsig_hex);
  if (!body.is_ok() || !rsig.is_ok()) return Status::invalid(what + ": roster is not hex");

  OUTPOST_ASSIGN_OR_RETURN(sync::SignedCertificate presented, certificate_from_hex(cert_hex));
  auto verified_cert = sync::verify_certificate(presented.body, presented.sig, anchors.root_key);
  if (!verified_cert.is_ok()) return verified_cert.status().with_context(what);
  const sync::Certificate& c = presented.cert;
  auto verified_roster = sync::verify_roster(*body, *rsig, anchors.root_key, anchors.network_id);
  if (!verified_roster.is_ok()) return verified_roster.status().with_context(what);
  sync::SignedRoster& offered = verified_roster.value();

  OUTPOST_ASSIGN_OR_RETURN(auto store, open_store(dir));
  OUTPOST_ASSIGN_OR_RETURN(NodeId node_id, own_node_id(*store));
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey key,
                           crypto::read_signing_key(join(dir, kSigningKeyFile)));
  OUTPOST_ASSIGN_OR_RETURN(crypto::X25519KeyPair noise, read_noise_key(dir));
  if (c.network_id != anchors.network_id) {
    return Status::permission(what + ": certificate belongs to another network");
  }
  if (c.node_id != node_id) {
    return Status::permission(what + " is for node " + sync::id_hex(c.node_id) +
                              ", not this node (" + sync::id_hex(node_id) + ")");
  }
  if (!crypto::ct_equal(c.signing_key, key.public_key()) ||
      !crypto::ct_equal(c.noise_key, noise.public_key())) {
    return Status::permission(what +
                              ": the certificate does not name this node's own public "
                              "keys (was the request made in this data dir?)");
  }
  const sync::SignedCertificate* listed = offered.roster.find(node_id);
  if (listed == nullptr || *listed != presented) {
    return Status::permission(what + ": roster v" + std::to_string(offered.roster.version) +
                              " does not list this certificate");
  }
  if (offered.roster.is_revoked(node_id)) {
    return Status::permission(what + ": this node is revoked in the enclosed roster");
  }

  OUTPOST_ASSIGN_OR_RETURN(auto existing, load_trust_anchors(*store));
  if (existing &&
      (existing->network_id != anchors.network_id || existing->root_key != anchors.root_key)) {
    return Status::invalid(dir + " is already enrolled in network " +
                           crypto::to_hex(existing->network_id) + " under another root");
  }
  std::shared_ptr<const sync::Roster> current;
  if (existing) {
    OUTPOST_ASSIGN_OR_RETURN(current, load_roster(*store, *existing));
  }

  OUTPOST_ASSIGN_OR_RETURN(storage::Transaction txn, store->begin());
  std::uint64_t roster_version = offered.roster.version;
  if (!current || offered.roster.version > current->version) {
    if (current) OUTPOST_RETURN_IF_ERROR(sync::check_roster_successor(*current, offered.roster));
    OUTPOST_RETURN_IF_ERROR(store->put_roster(offered.roster.version, offered.body, offered.sig));
  } else {
    const sync::SignedCertificate* held = current->find(node_id);
    if (held == nullptr || *held != presented) {
      return Status::invalid(what + " is older than this node's roster v" +
                             std::to_string(current->version) +
                             ", which lists another "
                             "certificate; ask HQ for a fresh enrollment file");
    }
    roster_version = current->version;
  }
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaNetworkId, crypto::to_hex(anchors.network_id)));
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaRootKey, crypto::to_hex(anchors.root_key)));
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaCertificate, certificate_to_hex(presented)));
  OUTPOST_RETURN_IF_ERROR(store->set_meta(kMetaNoiseKey, crypto::to_hex(noise.public_key())));
  OUTPOST_RETURN_IF_ERROR(store->set_meta("role", sync::role_name(c.role)));
  OUTPOST_RETURN_IF_ERROR(store->set_meta("node_name", c.name));
  OUTPOST_RETURN_IF_ERROR(txn.commit());
  return Json{{"node_id", sync::id_hex(node_id)},
              {"name", c.name},
              {"role", sync::role_name(c.role)},
              {"network_id", crypto::to_hex(anchors.network_id)},
              {"root_fingerprint", sync::key_fingerprint(anchors.root_key)},
              {"roster_version", roster_version},
              {"valid_until_ms", c.valid_until_ms}};
}

Result<Json> hq_revoke(const std::string& hq_dir, const std::string& node, std::uint64_t after_seq,
                       bool force, sync::Clock& clock) {
  OUTPOST_ASSIGN_OR_RETURN(HqAuthority hq, open_authority(hq_dir));
  const sync::SignedCertificate* target = hq.roster->find_by_name(node);
  if (target == nullptr && node.size() == 32) {
    auto id = sync::parse_id(node);
    if (id.is_ok()) target = hq.roster->find(*id);
  }
  if (target == nullptr) {
    return Status::not_found("no node named or with id '" + node + "' in roster v" +
                             std::to_string(hq.roster->version));
  }
  const NodeId id = target->cert.node_id;
  OUTPOST_ASSIGN_OR_RETURN(NodeId self, own_node_id(*hq.store));
  if (id == self) return Status::invalid("an HQ node cannot revoke itself");
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, hq.store->head(id));
  if (head.seq > after_seq && !force) {
    return Status::refused("HQ already holds ops of '" + target->cert.name + "' up to seq " +
                           std::to_string(head.seq) + "; a cutoff at seq " +
                           std::to_string(after_seq) +
                           " would invalidate ops already applied "
                           "here. Use --after-seq " +
                           std::to_string(head.seq) + " (or later), or --force");
  }
  sync::Roster next = *hq.roster;
  OUTPOST_RETURN_IF_ERROR(next.add_revocation(sync::Revocation{id, after_seq}));
  const std::string name = target->cert.name;
  OUTPOST_ASSIGN_OR_RETURN(storage::StoredRoster stored,
                           publish_roster(hq, std::move(next), clock.now_ms()));
  return Json{{"node_id", sync::id_hex(id)},
              {"name", name},
              {"after_seq", after_seq},
              {"held_seq", head.seq},
              {"roster_version", stored.version}};
}

Result<Json> roster_json(storage::Store& store, std::uint64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(auto anchors, load_trust_anchors(store));
  if (!anchors) return Status::not_found("this node has no roster (not enrolled)");
  OUTPOST_ASSIGN_OR_RETURN(auto roster, load_roster(store, *anchors));
  if (!roster) return Status::not_found("this node has no roster (not enrolled)");
  Json nodes = Json::array();
  for (const auto& sc : roster->certificates) {
    const sync::Certificate& c = sc.cert;
    Json n{{"node_id", sync::id_hex(c.node_id)},
           {"name", c.name},
           {"role", sync::role_name(c.role)},
           {"status", status_at(*roster, sc, now_ms)},
           {"signing_key", crypto::to_hex(c.signing_key)},
           {"noise_key", crypto::to_hex(c.noise_key)},
           {"valid_from_ms", c.valid_from_ms},
           {"valid_until_ms", c.valid_until_ms}};
    if (const sync::Revocation* rev = roster->revocation(c.node_id)) {
      n["revoked_after_seq"] = rev->after_seq;
    }
    nodes.push_back(std::move(n));
  }
  OUTPOST_ASSIGN_OR_RETURN(auto versions, store.roster_versions());
  return Json{{"version", roster->version},
              {"issued_ms", roster->issued.wall_ms},
              {"network_id", crypto::to_hex(anchors->network_id)},
              {"root_public_key", crypto::to_hex(anchors->root_key)},
              {"root_fingerprint", sync::key_fingerprint(anchors->root_key)},
              {"stored_versions", versions},
              {"nodes", nodes}};
}

std::string roster_text(const Json& r) {
  auto date = [](std::uint64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return std::string(buf);
  };
  std::string out = "roster v" + std::to_string(r["version"].get<std::uint64_t>()) + "  network " +
                    r["network_id"].get<std::string>() + "  root " +
                    r["root_fingerprint"].get<std::string>() + "  issued " +
                    date(r["issued_ms"].get<std::uint64_t>()) + "\n";
  for (const auto& n : r["nodes"]) {
    std::string status = n["status"].get<std::string>();
    if (n.contains("revoked_after_seq")) {
      status += " after seq " + std::to_string(n["revoked_after_seq"].get<std::uint64_t>());
    }
    out += n["node_id"].get<std::string>() + "  " + n["role"].get<std::string>() + "  " +
           n["name"].get<std::string>() + "  valid until " +
           date(n["valid_until_ms"].get<std::uint64_t>()) + "  " + status + "\n";
  }
  return out;
}

Result<Json> read_json_file(const std::string& path) {
  // An enrollment file holds a roster at its maximum, in hex, plus a few small fields.
  constexpr std::uintmax_t kJsonFileBytesMax = 8 * 1024 * 1024;
  static_assert(2 * limits::kRosterBytesMax + 64 * 1024 < kJsonFileBytesMax);
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::not_found("file " + path + " does not exist");
  if (fs::file_size(path, ec) > kJsonFileBytesMax || ec) {
    return Status::invalid("file " + path + " is too large or unreadable");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Status::io_error("cannot read " + path);
  try {
    return Json::parse(text);
  } catch (const std::exception&) {
    return Status::invalid("file " + path + " is not valid JSON");
  }
}

Status write_json_file(const std::string& path, const Json& json) {
  const std::string tmp = path + ".tmp";
  const std::string text = json.dump(2) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("cannot create " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::io_error("cannot write " + path);
  }
  return Status::ok();
}

}  // namespace outpost::node
