// Node identity and HQ's enrollment authority (docs/security.md): the Noise static key file, the
// HQ root key, enrollment requests and files, certificates, revocations and the rosters kept in
// a data dir's database. Used by the `outpost` CLI, by Ledger::open and by outpostd at start.
// Functions that take a dir open its database themselves; none is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "outpost/base/status.h"
#include "outpost/crypto/noise.h"
#include "outpost/node/ledger.h"
#include "outpost/storage/store.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rules.h"

namespace outpost::node {

// Files inside a data dir (besides kSigningKeyFile). root.key exists only in the data dir of
// the HQ node that ran `outpost hq init`; production keeps it offline (docs/security.md).
inline constexpr const char* kNoiseKeyFile = "noise.key";
inline constexpr const char* kRootKeyFile = "root.key";
// Key-file kinds: a root key cannot be loaded by mistake as a node key, or the other way round.
inline constexpr const char* kNoiseKeyKind = "x25519-private";
inline constexpr const char* kRootKeyKind = "root-ed25519-seed";
// Certificate validity when --valid-days is not given: HQ nodes 10 years, other nodes 2 years.
inline constexpr std::uint32_t kHqValidDaysDefault = 3650;
inline constexpr std::uint32_t kNodeValidDaysDefault = 730;
// New certificates start this long before they are issued, so a peer whose clock lags HQ's by
// less than a day accepts them at once. Only link admission reads wall clocks.
inline constexpr std::uint64_t kCertificateBackdateMs = 24ULL * 3600 * 1000;

// Everything a node needs to open links: its certificate, the Noise key it names, the trust
// anchors. The noise key is shared (links copy the pointer, never the secret).
struct NodeIdentity {
  sync::SignedCertificate certificate;
  std::shared_ptr<const crypto::X25519KeyPair> noise_key;
  sync::NetworkId network_id{};
  crypto::PublicKey root_key{};
};

// The pinned network id and root public key of an enrolled node.
struct TrustAnchors {
  sync::NetworkId network_id{};
  crypto::PublicKey root_key{};
};

// Creates noise.key (mode 0600) in `dir` and records its public key in the meta table, unless
// the file already exists (then only checks it is readable). Called by Ledger::init.
Status ensure_noise_key(const std::string& dir, storage::Store& store);
// Reads noise.key. kNotFound if missing, kPermission for loose file modes, kCorruption if damaged.
Result<crypto::X25519KeyPair> read_noise_key(const std::string& dir);

// `outpost hq init`: creates a new HQ data dir holding a new network id, the root key
// (root.key, 0600), the HQ node's own keys and certificate (role hq, signed by the root) and
// roster v1 listing it. Returns a summary (node_id, network_id, root_public_key, fingerprint).
// kInvalidArgument if `dir` is already initialized or an argument is out of range.
Result<Json> hq_init(const std::string& dir, const std::string& name, std::uint32_t valid_days,
                     sync::Clock& clock);

// `outpost enroll-request`: returns this node's enrollment request: node id, name, signing and
// Noise public keys, self-signed with node.key (proof that the requester holds it). Creates
// noise.key first if the dir predates it. Nothing secret is in the request.
Result<Json> make_enroll_request(const std::string& dir);

// `outpost hq enroll`: on the HQ data dir holding root.key, checks `request`, issues a
// certificate for it named `name` with `role`, valid `valid_days` from now, adds it to a new
// roster version signed by the root, stores that roster and returns the enrollment file (the
// certificate, the roster, the root public key, the network id). kInvalidArgument for a bad
// request or name clash, kPermission if the dir has no root key or it does not match.
Result<Json> hq_enroll(const std::string& hq_dir, const std::string& name, sync::NodeRole role,
                       const Json& request, std::uint32_t valid_days, sync::Clock& clock);

// `outpost init --enroll`: installs an enrollment file into this node's data dir after checking
// that the root signed the certificate and the roster, that the certificate names this node's
// own id and public keys, and that the roster lists it unrevoked. Records the network id, root
// key, certificate, role and name. Returns a summary. kPermission when any check fails,
// kInvalidArgument if the dir is enrolled in another network.
Result<Json> install_enrollment(const std::string& dir, const Json& enrollment);

// `outpost hq revoke`: revokes `node` (32-hex id or name): its ops with seq > after_seq become
// invalid and it can no longer connect. Signs and stores a new roster version; returns it as
// JSON. Refuses (kRefused) a cutoff below the seq HQ already holds from that node unless
// `force` (those ops are applied here already, so cutting them off splits the chain's state).
Result<Json> hq_revoke(const std::string& hq_dir, const std::string& node, std::uint64_t after_seq,
                       bool force, sync::Clock& clock);

// The pinned anchors of `store`'s node, or nullopt when it is not enrolled.
Result<std::optional<TrustAnchors>> load_trust_anchors(storage::Store& store);
// Loads the newest stored roster, checking its root signature; null when there is none.
// kCorruption if the stored roster fails verification.
Result<std::shared_ptr<const sync::Roster>> load_roster(storage::Store& store,
                                                        const TrustAnchors& anchors);
// Verifies an offered roster (root signature over it and each certificate, network id),
// checks that it may succeed the newest stored one (sync::check_roster_successor) and stores it.
// Returns the new roster. kRefused for a version not newer than the stored one (ignore it);
// kPermission or kCorruption for a roster that must not be accepted.
Result<std::shared_ptr<const sync::Roster>> accept_roster(storage::Store& store,
                                                          const TrustAnchors& anchors,
                                                          sync::ByteView body, sync::ByteView sig);
// --- HQ-signed program rules (docs/program-rules.md, "Signed rules") ---
// `outpost hq rules FILE`: on the HQ data dir holding root.key, loads the rules file, checks that
// its version is newer than every signed version HQ issued before, signs it for this network and
// stores it (running nodes pick it up on their next sync tick and pass it on). Returns a summary.
// kInvalidArgument for a bad file or a version that is not newer; errors of open as hq_revoke.
Result<Json> hq_set_rules(const std::string& hq_dir, const std::string& rules_file, sync::Clock& clock);
// The newest stored signed rules, checked against the root; nullopt when there are none.
// kCorruption if the stored document fails verification.
Result<std::optional<sync::SignedRules>> load_signed_rules(storage::Store& store, const TrustAnchors& anchors);
// Verifies offered rules (root signature, network, valid content) and stores them if their
// version is newer than the stored one. kRefused for a version that is not newer (ignore it);
// kPermission or kCorruption for rules that must not be accepted.
Result<sync::SignedRules> accept_rules(storage::Store& store, const TrustAnchors& anchors, sync::ByteView body,
                                       sync::ByteView sig);

// Loads an enrolled node's link identity. kNotFound ("not enrolled") without a certificate;
// kCorruption if noise.key is not the key the certificate names.
Result<NodeIdentity> load_identity(const std::string& dir, storage::Store& store);

// `outpost roster show`: the newest roster with each node's status (active, expired, revoked)
// at now_ms, plus the stored versions. kNotFound when the node has no roster.
Result<Json> roster_json(storage::Store& store, std::uint64_t now_ms);

// Renders roster_json() for operators: one header line, then one line per node.
std::string roster_text(const Json& roster);

// JSON files of the enrollment exchange. read_json_file: kNotFound if missing, kInvalidArgument
// if not JSON or over 8 MiB. write_json_file writes a temporary file, fsyncs and renames it over
// `path` (mode 0644: these files hold public keys only).
Result<Json> read_json_file(const std::string& path);
Status write_json_file(const std::string& path, const Json& json);

// Hex of the signed-certificate wire form (meta "certificate", enrollment files) and back.
std::string certificate_to_hex(const sync::SignedCertificate& sc);
Result<sync::SignedCertificate> certificate_from_hex(const std::string& hex);

}  // namespace outpost::node
